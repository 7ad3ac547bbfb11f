#ifndef LANE_LAZY_CURL_H
#define LANE_LAZY_CURL_H

/// Whether libcurl has been loaded into this process by these definitions (1) or not (0). The
/// server never makes an HTTP request, so it never should be.
int lane_lazy_curl_loaded(void);

/// Drives libcurl through these definitions (version, an easy handle with a string and a long
/// option and a getinfo, a URL handle) and writes libcurl's version into `version`. 0 when each
/// call reached libcurl and answered as libcurl does; else the number of the first call that
/// did not. For the tests (Tests/LazyCurlTests): Swift cannot call C variadic functions.
int lane_lazy_curl_check(char *version, unsigned long size);

#endif
