import LaneModel
import Testing

@Suite("Redaction of credential values")
struct RedactorTests {
    let secret = "ghp_S3cr3t/Value+x=="
    var redactor: Redactor { Redactor(secrets: [("TOKEN", Array(secret.utf8))]) }

    @Test("the value, its base64 and URL-encoded forms are replaced")
    func forms() {
        let b64 = String(decoding: Redactor.base64(Array(secret.utf8)), as: UTF8.self)
        let url = String(decoding: Redactor.percentEncoded(Array(secret.utf8), upper: true), as: UTF8.self)
        #expect(b64 == "Z2hwX1MzY3IzdC9WYWx1ZSt4PT0=")
        #expect(url == "ghp_S3cr3t%2FValue%2Bx%3D%3D")
        for form in [secret, b64, String(b64.dropLast()), url, url.lowercased().replacingOccurrences(of: "ghp_s3cr3t", with: "ghp_S3cr3t").replacingOccurrences(of: "value", with: "Value")] {
            let text = "before \(form) after"
            let out = String(decoding: redactor.redact(Array(text.utf8)), as: UTF8.self)
            #expect(out == "before [redacted:TOKEN] after", "form \(form)")
        }
        #expect(String(decoding: redactor.redact(Array("nothing here".utf8)), as: UTF8.self) == "nothing here")
    }

    @Test("the value inside a larger base64 text is found at every alignment, standard and URL-safe")
    func embeddedBase64() {
        for prefix in 0..<6 {
            for suffix in 0..<4 {
                let plain = Array("abcdef".utf8.prefix(prefix)) + Array(secret.utf8) + Array("uvw".utf8.prefix(suffix))
                let b64 = Redactor.base64(plain)
                let url = b64.map { $0 == UInt8(ascii: "+") ? UInt8(ascii: "-") : $0 == UInt8(ascii: "/") ? UInt8(ascii: "_") : $0 }
                for text in [b64, url] {
                    let out = String(decoding: redactor.redact(text), as: UTF8.self)
                    #expect(out.contains("[redacted:TOKEN]"), "prefix \(prefix) suffix \(suffix): \(out)")
                    #expect(out.count < text.count, "prefix \(prefix) suffix \(suffix)")
                }
            }
        }
        // Unrelated base64 stays as it is.
        let other = Redactor.base64(Array("an unrelated log line of some length".utf8))
        #expect(redactor.redact(other) == other)
    }

    @Test("a value split across chunks at every position is still found")
    func splitChunks() {
        let text = Array("x\(secret)y\(secret)".utf8)
        for cut in 0...text.count {
            var r = redactor
            var out = r.feed(Array(text[0..<cut]))
            out += r.feed(Array(text[cut...]))
            out += r.finish()
            #expect(String(decoding: out, as: UTF8.self) == "x[redacted:TOKEN]y[redacted:TOKEN]", "cut at \(cut)")
        }
        // One byte at a time.
        var r = redactor
        var out: [UInt8] = []
        for b in text { out += r.feed([b]) }
        out += r.finish()
        #expect(String(decoding: out, as: UTF8.self) == "x[redacted:TOKEN]y[redacted:TOKEN]")
    }

    @Test("a prefix of the value at the end of the stream is passed on unchanged")
    func partialAtEnd() {
        var r = redactor
        let out = r.feed(Array("abc ghp_S3".utf8)) + r.finish()
        #expect(String(decoding: out, as: UTF8.self) == "abc ghp_S3")
    }
}
