import LaneModel

/// Record bodies written by hand: canonical JSON (keys sorted, optionals left out when nil,
/// `Data` as padded base64, doubles in their shortest exact form), readable by the `Codable`
/// types in Records.swift.
///
/// Why not `JSONEncoder`: every `lanes run` is a fresh process, and the encoder's first use in
/// one costs milliseconds of Swift runtime work (protocol-conformance lookups across the static
/// binary), more than the rest of the journal's share of a step. Records written earlier with
/// `JSONEncoder` stay as they are: a record's hash covers its stored bytes, never a re-encoding.
enum CanonicalBody {
    static func intent(_ i: StepIntent) throws -> String {
        var w = Writer()
        w.open()
        w.key("argv"); w.strings(i.argv)
        w.key("credentials"); w.strings(i.credentials)
        w.key("cwd"); w.string(i.cwd)
        w.key("environment"); w.strings(i.environment)
        w.key("idempotent"); w.bool(i.idempotent)
        w.key("lane"); w.string(i.lane)
        w.key("limits"); try w.doubles(i.limits)
        w.key("profile"); w.string(i.profile)
        w.key("profile_fingerprint"); w.string(i.profileFingerprint)
        w.key("supervisor"); supervisor(i.supervisor, &w)
        w.close()
        return w.text
    }

    /// A close body (`CloseBody`): the result as reported plus `intent_seq`.
    static func close(_ r: StepResult, intentSeq: Int) -> String { CloseBody.encode(r, intentSeq: intentSeq) }

    static func runOpened(_ r: RunOpened) -> String {
        var w = Writer()
        w.open()
        w.key("lane"); w.string(r.lane)
        w.key("supervisor"); supervisor(r.supervisor, &w)
        w.close()
        return w.text
    }

    private static func supervisor(_ s: Supervisor, _ w: inout Writer) {
        w.open()
        w.key("boot_id"); w.string(s.bootID)
        w.key("host"); w.string(s.host)
        if let lock = s.lock { w.key("lock"); w.string(lock) }
        w.key("pid"); w.int(Int(s.pid))
        w.key("start_time"); w.raw(s.startTime.description)
        w.close()
    }

    /// Appends JSON tokens; commas between members and elements are placed automatically.
    struct Writer {
        private(set) var bytes: [UInt8] = []
        private var needsComma = false

        var text: String { String(decoding: bytes, as: UTF8.self) }

        mutating func open() { separate(); bytes.append(UInt8(ascii: "{")); needsComma = false }
        mutating func close() { bytes.append(UInt8(ascii: "}")); needsComma = true }
        mutating func key(_ k: String) {
            separate()
            JSONValue.quote(k, into: &bytes)
            bytes.append(UInt8(ascii: ":"))
            needsComma = false
        }
        mutating func string(_ s: String) { separate(); JSONValue.quote(s, into: &bytes); needsComma = true }
        mutating func int(_ i: Int) { raw(i.description) }
        mutating func bool(_ b: Bool) { raw(b ? "true" : "false") }
        mutating func double(_ d: Double) throws {
            guard d.isFinite else { throw JournalError(.unavailable, "a journal record cannot hold the number \(d)") }
            raw(d.description)
        }
        mutating func base64(_ data: [UInt8]) {
            separate()
            bytes.append(UInt8(ascii: "\""))
            bytes += Redactor.base64(data)
            bytes.append(UInt8(ascii: "\""))
            needsComma = true
        }
        mutating func strings(_ list: [String]) {
            separate()
            bytes.append(UInt8(ascii: "["))
            needsComma = false
            for s in list { string(s) }
            bytes.append(UInt8(ascii: "]"))
            needsComma = true
        }
        mutating func doubles(_ map: [String: Double]) throws {
            open()
            for k in map.keys.sorted() {
                key(k)
                try double(map[k] ?? 0)
            }
            close()
        }
        mutating func raw(_ token: String) { separate(); bytes += token.utf8; needsComma = true }
        private mutating func separate() { if needsComma { bytes.append(UInt8(ascii: ",")) } }
    }
}
