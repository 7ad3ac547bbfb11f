import CLazyCurl
import Testing

/// `CLazyCurl`: libcurl's functions defined by Lanes for the release `lanes-mcp`, which load the
/// real libcurl on first use and forward every call to it, variadic options included.
@Suite struct LazyCurlTests {
    @Test func callsReachTheRealLibcurlAndLoadItOnFirstUse() {
        var version = [CChar](repeating: 0, count: 256)
        let failed = lane_lazy_curl_check(&version, UInt(version.count))
        #expect(failed == 0, "call \(failed) of lane_lazy_curl_check did not reach libcurl or got another answer")
        let text = String(decoding: version.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        #expect(text.hasPrefix("libcurl/"), "\(text)")
        #expect(lane_lazy_curl_loaded() == 1, "the first call loaded libcurl")
    }
}
