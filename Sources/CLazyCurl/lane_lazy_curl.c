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

int curl_global_init(long flags) {
    int (*f)(long) = REAL(curl_global_init);
    return f ? f(flags) : LANE_CURLE_FAILED_INIT;
}

char *curl_version(void) {
    char *(*f)(void) = REAL(curl_version);
    return f ? f() : "libcurl (could not be loaded)";
}

void *curl_version_info(int age) {
    void *(*f)(int) = REAL(curl_version_info);
    return f ? f(age) : NULL;
}

void curl_free(void *p) {
    void (*f)(void *) = REAL(curl_free);
    if (f) f(p);
}

void *curl_easy_init(void) {
    void *(*f)(void) = REAL(curl_easy_init);
    return f ? f() : NULL;
}

void curl_easy_cleanup(void *handle) {
    void (*f)(void *) = REAL(curl_easy_cleanup);
    if (f) f(handle);
}

int curl_easy_setopt(void *handle, int option, ...) {
    va_list ap;
    va_start(ap, option);
    void *value = va_arg(ap, void *);
    va_end(ap);
    int (*f)(void *, int, ...) = REAL(curl_easy_setopt);
    return f ? f(handle, option, value) : LANE_CURLE_FAILED_INIT;
}

int curl_easy_getinfo(void *handle, int info, ...) {
    va_list ap;
    va_start(ap, info);
    void *out = va_arg(ap, void *);
    va_end(ap);
    int (*f)(void *, int, ...) = REAL(curl_easy_getinfo);
    return f ? f(handle, info, out) : LANE_CURLE_FAILED_INIT;
}

int curl_easy_pause(void *handle, int bitmask) {
    int (*f)(void *, int) = REAL(curl_easy_pause);
    return f ? f(handle, bitmask) : LANE_CURLE_FAILED_INIT;
}

const char *curl_easy_strerror(int code) {
    const char *(*f)(int) = REAL(curl_easy_strerror);
    return f ? f(code) : "libcurl could not be loaded";
}

void *curl_multi_init(void) {
    void *(*f)(void) = REAL(curl_multi_init);
    return f ? f() : NULL;
}

int curl_multi_cleanup(void *multi) {
    int (*f)(void *) = REAL(curl_multi_cleanup);
    return f ? f(multi) : LANE_CURLM_INTERNAL_ERROR;
}

int curl_multi_setopt(void *multi, int option, ...) {
    va_list ap;
    va_start(ap, option);
    void *value = va_arg(ap, void *);
    va_end(ap);
    int (*f)(void *, int, ...) = REAL(curl_multi_setopt);
    return f ? f(multi, option, value) : LANE_CURLM_INTERNAL_ERROR;
}

int curl_multi_add_handle(void *multi, void *handle) {
    int (*f)(void *, void *) = REAL(curl_multi_add_handle);
    return f ? f(multi, handle) : LANE_CURLM_INTERNAL_ERROR;
}

int curl_multi_remove_handle(void *multi, void *handle) {
    int (*f)(void *, void *) = REAL(curl_multi_remove_handle);
    return f ? f(multi, handle) : LANE_CURLM_INTERNAL_ERROR;
}

int curl_multi_assign(void *multi, int socket, void *pointer) {
    int (*f)(void *, int, void *) = REAL(curl_multi_assign);
    return f ? f(multi, socket, pointer) : LANE_CURLM_INTERNAL_ERROR;
}

void *curl_multi_info_read(void *multi, int *queued) {
    void *(*f)(void *, int *) = REAL(curl_multi_info_read);
    if (!f && queued) *queued = 0;
    return f ? f(multi, queued) : NULL;
}

int curl_multi_socket_action(void *multi, int socket, int events, int *running) {
    int (*f)(void *, int, int, int *) = REAL(curl_multi_socket_action);
    return f ? f(multi, socket, events, running) : LANE_CURLM_INTERNAL_ERROR;
}

void *curl_slist_append(void *list, const char *text) {
    void *(*f)(void *, const char *) = REAL(curl_slist_append);
    return f ? f(list, text) : NULL;
}

void curl_slist_free_all(void *list) {
    void (*f)(void *) = REAL(curl_slist_free_all);
    if (f) f(list);
}

void *curl_url(void) {
    void *(*f)(void) = REAL(curl_url);
    return f ? f() : NULL;
}

int curl_url_get(void *url, int part, char **out, unsigned int flags) {
    int (*f)(void *, int, char **, unsigned int) = REAL(curl_url_get);
    return f ? f(url, part, out, flags) : LANE_CURLUE_OUT_OF_MEMORY;
}

int curl_url_set(void *url, int part, const char *text, unsigned int flags) {
    int (*f)(void *, int, const char *, unsigned int) = REAL(curl_url_set);
    return f ? f(url, part, text, flags) : LANE_CURLUE_OUT_OF_MEMORY;
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
