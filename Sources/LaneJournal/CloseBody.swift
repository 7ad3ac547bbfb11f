import Foundation
import LaneModel

/// The body of a close record: `{"intent_seq":N,"result":RESULT}`, where RESULT is the step's
/// `StepResult.json()` exactly as the live step reported it, so a replay returns the same text.
/// Output that is not valid UTF-8 is kept byte for byte beside it (`stdout_bytes`,
/// `stderr_bytes`, base64), since the JSON string holds it with replacement characters.
///
/// Bodies written before (schema ≤ 2) hold the fields of `LegacyClose` instead; they are read
/// as they are (a record's hash covers its stored bytes, so nothing is ever rewritten).
enum CloseBody {
    static func encode(_ result: StepResult, intentSeq: Int) -> String {
        var out = Array("{\"intent_seq\":\(intentSeq),\"result\":".utf8)
        out += result.json().utf8
        for (key, bytes) in [("stderr_bytes", result.stderr), ("stdout_bytes", result.stdout)]
        where String(validating: bytes, as: UTF8.self) == nil {
            out += ",\"\(key)\":\"".utf8
            out += Redactor.base64(bytes)
            out.append(UInt8(ascii: "\""))
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    /// The stored result JSON (a legacy body: its result rendered now).
    static func resultJSON(_ body: String) -> String? {
        if let range = resultRange(body) { return String(body.utf8[range]) }
        return legacy(body)?.result.json()
    }

    static func result(_ body: String) -> StepResult? {
        guard resultRange(body) != nil else { return legacy(body)?.result }
        guard let top = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
              let o = top["result"] as? [String: Any] else { return nil }
        return StepResult(json: o, stdout: (top["stdout_bytes"] as? String).flatMap { Data(base64Encoded: $0) },
                          stderr: (top["stderr_bytes"] as? String).flatMap { Data(base64Encoded: $0) })
    }

    /// The seq of the intent a close body closes.
    static func intentSeq(_ body: String) -> Int? {
        let prefix = "{\"intent_seq\":"
        if body.hasPrefix(prefix) {
            return Int(body.dropFirst(prefix.count).prefix { $0.isNumber })
        }
        struct Ref: Decodable { var intent_seq: Int }
        return (try? JSONDecoder().decode(Ref.self, from: Data(body.utf8)))?.intent_seq
    }

    private static func legacy(_ body: String) -> LegacyClose? {
        try? JSONDecoder().decode(LegacyClose.self, from: Data(body.utf8))
    }

    /// Where RESULT stands in a current body: after the `"result":` key, up to its matching brace.
    private static func resultRange(_ body: String) -> Range<String.UTF8View.Index>? {
        let utf8 = body.utf8
        guard body.hasPrefix("{\"intent_seq\":"), let key = body.range(of: ",\"result\":{") else { return nil }
        let start = utf8.index(before: key.upperBound)
        var depth = 0, inString = false, escaped = false
        var i = start
        while i < utf8.endIndex {
            let c = utf8[i]
            if inString {
                if escaped { escaped = false } else if c == UInt8(ascii: "\\") { escaped = true } else if c == UInt8(ascii: "\"") { inString = false }
            } else if c == UInt8(ascii: "\"") {
                inString = true
            } else if c == UInt8(ascii: "{") {
                depth += 1
            } else if c == UInt8(ascii: "}") {
                depth -= 1
                if depth == 0 { return start..<utf8.index(after: i) }
            }
            i = utf8.index(after: i)
        }
        return nil
    }
}

extension StepResult {
    /// A result read back from its JSON object (`json()`); `stdout`/`stderr` override the
    /// output strings when the bytes were kept separately. Fields this build does not know
    /// stay in the stored text (`JournalRecord.closeJSON`), which is what a replay prints.
    init?(json o: [String: Any], stdout: Data? = nil, stderr: Data? = nil) {
        guard let outcomeName = o["outcome"] as? String, let outcome = Outcome(rawValue: outcomeName) else { return nil }
        func int32(_ k: String) -> Int32? { (o[k] as? NSNumber).map { $0.int32Value } }
        func uint64(_ k: String) -> UInt64? { (o[k] as? NSNumber).map { $0.uint64Value } }
        func double(_ k: String) -> Double? { (o[k] as? NSNumber).map { $0.doubleValue } }
        func string(_ k: String) -> String? { o[k] as? String }
        self.init(lane: string("lane") ?? "", profile: string("profile") ?? "",
                  profileFingerprint: string("profile_fingerprint") ?? "", outcome: outcome,
                  exitCode: int32("exit_code"), signal: int32("signal"), wallMs: double("wall_ms") ?? 0,
                  cpuMs: double("cpu_ms") ?? 0, maxRssKb: (o["max_rss_kb"] as? NSNumber)?.intValue ?? 0,
                  stdout: stdout.map(Array.init) ?? Array((string("stdout") ?? "").utf8),
                  stderr: stderr.map(Array.init) ?? Array((string("stderr") ?? "").utf8),
                  stdoutTruncated: (o["stdout_truncated"] as? Bool) ?? false,
                  stderrTruncated: (o["stderr_truncated"] as? Bool) ?? false,
                  protections: (o["protections"] as? [String]) ?? [], error: string("error"))
        limit = string("limit").flatMap(LimitName.init(rawValue:))
        limitsHit = ((o["limits_hit"] as? [String]) ?? []).compactMap(LimitName.init(rawValue:))
        limitsNotApplied = (o["limits_not_applied"] as? [String]) ?? []
        cgroup = string("cgroup")
        memoryPeakBytes = uint64("memory_peak_bytes")
        cgroupCpuMs = double("cgroup_cpu_ms")
        pidsPeak = uint64("pids_peak")
        requester = string("requester")  // MERGE(issue 13): the MCP socket peer
        reason = string("reason").flatMap(RefusalReason.init(rawValue:))
        denials = ((o["denials"] as? [[String: Any]]) ?? []).compactMap { d in
            guard let kind = (d["kind"] as? String).flatMap(Denial.Kind.init(rawValue:)), let name = d["name"] as? String else { return nil }
            return Denial(kind: kind, name: name, count: (d["count"] as? NSNumber)?.intValue ?? 1,
                          firstPid: (d["first_pid"] as? NSNumber)?.int32Value, firstProcess: d["first_process"] as? String)
        }
        unprotected = (o["unprotected"] as? [String]) ?? []
        hostIdentity = string("host_identity")
        // The network totals (what governance folds); the lists stay in the stored JSON text.
        if let n = o["network"] as? [String: Any] {
            func count(_ k: String) -> Int { (n[k] as? NSNumber)?.intValue ?? 0 }
            network = NetworkRecord(omitted: count("omitted"), attempts: count("attempts"), deniedCount: count("denied_count"),
                                    bytesOut: UInt64(max(0, count("bytes_out"))), bytesIn: UInt64(max(0, count("bytes_in"))))
        }
        // An exit status the fields alone do not give (a stop's 81) was reported as such.
        if let status = int32("exit_status"), status != exitStatus, exitCode == nil || outcome == .stopped { exitCode = status }
    }
}
