// libcurl, loaded on first use instead of at start-up, for `lanes-mcp` built with the Swift
// libraries linked statically (scripts/lib/setup.sh).
//
// Why: the MCP SDK imports FoundationNetworking, whose static archive calls 23 libcurl
// functions (only for URLSession, which `lanes mcp` never uses: it serves, it makes no HTTP
// requests). Linking libcurl made the dynamic loader map it and the 28 libraries it needs
// (OpenSSL, GnuTLS, Kerberos, LDAP, ...) into every server: 5.6 MiB of its resident memory
// (docs/benchmarks.md, stop 11). These definitions take the place of libcurl's on the link
// line; the first call of any of them loads the real libcurl with dlopen and forwards to it,
// so URLSession still works if it is ever used; if libcurl cannot be loaded, each call fails
// the way libcurl reports an initialisation failure (error code or NULL).
//
// Why C: the forwarding needs C variadic arguments (curl_easy_setopt and friends take one
// argument of the option's type: a long, a pointer or a curl_off_t, each passed in one 64-bit
// integer register or stack slot on x86_64 and aarch64, so it is forwarded as a pointer-sized
// value), and dlopen/dlsym.
#include "lane_lazy_curl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define LANE_CURLE_FAILED_INIT 2
#define LANE_CURLM_INTERNAL_ERROR 4
#define LANE_CURLUE_OUT_OF_MEMORY 7

#define LANE_CURL_FUNCTIONS(X) \
    X(curl_global_init) X(curl_version) X(curl_version_info) X(curl_free) \
    X(curl_easy_init) X(curl_easy_cleanup) X(curl_easy_setopt) X(curl_easy_getinfo) \
    X(curl_easy_pause) X(curl_easy_strerror) \
    X(curl_multi_init) X(curl_multi_cleanup) X(curl_multi_setopt) X(curl_multi_add_handle) \
    X(curl_multi_remove_handle) X(curl_multi_assign) X(curl_multi_info_read) \
    X(curl_multi_socket_action) \
    X(curl_slist_append) X(curl_slist_free_all) \
    X(curl_url) X(curl_url_get) X(curl_url_set)

#define LANE_CURL_FIELD(name) void *name;
static struct { LANE_CURL_FUNCTIONS(LANE_CURL_FIELD) } real;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int loaded;

static void load(void) {
    void *library = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!library) return;
#define LANE_CURL_RESOLVE(name) real.name = dlsym(library, #name);
    LANE_CURL_FUNCTIONS(LANE_CURL_RESOLVE)
    loaded = 1;
}

// The real function `name` (NULL when libcurl or the function is missing).
#define REAL(name) (pthread_once(&once, load), real.name)

int lane_lazy_curl_loaded(void) { return __atomic_load_n(&loaded, __ATOMIC_ACQUIRE); }

// A function with fixed arguments: the real one's answer, or `failed` without libcurl.
#define LANE_FORWARD(type, name, failed, params, args) \
    type name params { \
        type (*real_##name) params = REAL(name); \
        return real_##name ? real_##name args : (failed); \
    }
#define LANE_FORWARD_VOID(name, params, args) \
    void name params { \
        void (*real_##name) params = REAL(name); \
        if (real_##name) real_##name args; \
    }
// curl_easy_setopt and its kind: a handle, an option and one value of the option's type (a
// long, a pointer or a curl_off_t), passed on as one pointer-sized value (see above).
#define LANE_FORWARD_OPTION(name, failed) \
    int name(void *handle, int option, ...) { \
        va_list ap; \
        va_start(ap, option); \
        void *value = va_arg(ap, void *); \
        va_end(ap); \
        int (*real_##name)(void *, int, ...) = REAL(name); \
        return real_##name ? real_##name(handle, option, value) : (failed); \
    }

LANE_FORWARD(int, curl_global_init, LANE_CURLE_FAILED_INIT, (long flags), (flags))
LANE_FORWARD(char *, curl_version, "libcurl (could not be loaded)", (void), ())
LANE_FORWARD(void *, curl_version_info, NULL, (int age), (age))
LANE_FORWARD_VOID(curl_free, (void *p), (p))
LANE_FORWARD(void *, curl_easy_init, NULL, (void), ())
LANE_FORWARD_VOID(curl_easy_cleanup, (void *handle), (handle))
LANE_FORWARD_OPTION(curl_easy_setopt, LANE_CURLE_FAILED_INIT)
LANE_FORWARD_OPTION(curl_easy_getinfo, LANE_CURLE_FAILED_INIT)
LANE_FORWARD(int, curl_easy_pause, LANE_CURLE_FAILED_INIT, (void *handle, int bitmask), (handle, bitmask))
LANE_FORWARD(const char *, curl_easy_strerror, "libcurl could not be loaded", (int code), (code))
LANE_FORWARD(void *, curl_multi_init, NULL, (void), ())
LANE_FORWARD(int, curl_multi_cleanup, LANE_CURLM_INTERNAL_ERROR, (void *multi), (multi))
LANE_FORWARD_OPTION(curl_multi_setopt, LANE_CURLM_INTERNAL_ERROR)
LANE_FORWARD(int, curl_multi_add_handle, LANE_CURLM_INTERNAL_ERROR, (void *multi, void *handle), (multi, handle))
LANE_FORWARD(int, curl_multi_remove_handle, LANE_CURLM_INTERNAL_ERROR, (void *multi, void *handle), (multi, handle))
LANE_FORWARD(int, curl_multi_assign, LANE_CURLM_INTERNAL_ERROR, (void *multi, int socket, void *pointer), (multi, socket, pointer))
LANE_FORWARD(int, curl_multi_socket_action, LANE_CURLM_INTERNAL_ERROR,
             (void *multi, int socket, int events, int *running), (multi, socket, events, running))
LANE_FORWARD(void *, curl_slist_append, NULL, (void *list, const char *text), (list, text))
LANE_FORWARD_VOID(curl_slist_free_all, (void *list), (list))
LANE_FORWARD(void *, curl_url, NULL, (void), ())
LANE_FORWARD(int, curl_url_get, LANE_CURLUE_OUT_OF_MEMORY, (void *url, int part, char **out, unsigned int flags),
             (url, part, out, flags))
LANE_FORWARD(int, curl_url_set, LANE_CURLUE_OUT_OF_MEMORY, (void *url, int part, const char *text, unsigned int flags),
             (url, part, text, flags))

// Without libcurl: no message, and none queued.
void *curl_multi_info_read(void *multi, int *queued) {
    void *(*real_info_read)(void *, int *) = REAL(curl_multi_info_read);
    if (real_info_read) return real_info_read(multi, queued);
    if (queued) *queued = 0;
    return NULL;
}

// The numbers of curl.h (a stable ABI) the check uses; curl.h itself is not needed to build.
#define LANE_CURLOPT_TIMEOUT_MS 155
#define LANE_CURLOPT_URL 10002
#define LANE_CURLINFO_RESPONSE_CODE 0x200002
#define LANE_CURLUPART_HOST 5
#define LANE_CURLUPART_PORT 6

int lane_lazy_curl_check(char *version, unsigned long size) {
    const char *v = curl_version();
    if (!v || strncmp(v, "libcurl/", 8) != 0) return 1;
    snprintf(version, size, "%s", v);
    void *easy = curl_easy_init();
    if (!easy) return 2;
    int step = 0;
    long code = -1;
    if (curl_easy_setopt(easy, LANE_CURLOPT_URL, "http://lanes.invalid:8080/x") != 0) step = 3;
    else if (curl_easy_setopt(easy, LANE_CURLOPT_TIMEOUT_MS, 1000L) != 0) step = 4;
    else if (curl_easy_getinfo(easy, LANE_CURLINFO_RESPONSE_CODE, &code) != 0 || code != 0) step = 5;
    curl_easy_cleanup(easy);
    if (step) return step;
    void *url = curl_url();
    if (!url) return 6;
    char *port = NULL, *host = NULL;
    if (curl_url_set(url, 0, "http://lanes.invalid:8080/x", 0) != 0) return 7;
    if (curl_url_get(url, LANE_CURLUPART_PORT, &port, 0) != 0 || !port || strcmp(port, "8080") != 0) return 8;
    if (curl_url_get(url, LANE_CURLUPART_HOST, &host, 0) != 0 || !host || strcmp(host, "lanes.invalid") != 0) return 9;
    curl_free(port);
    curl_free(host);
    return 0;
}
