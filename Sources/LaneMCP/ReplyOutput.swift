import LaneModel
import LaneRuntime

/// How much of a step's captured output an MCP tool result carries (`lanes mcp --reply-output`).
/// The journal keeps the whole capture, up to the profile's `limits.output` (4 MiB in the shipped
/// profiles); a reply that large does not fit an agent's context (Claude Code refuses tool
/// results over 25,000 tokens by default) nor, over Streamable HTTP, the official Python
/// client's 1 MiB limit on one server-sent event. So a reply holds at most `limit` bytes of
/// each stream: its head and its tail (an error is usually at the end), cut at character
/// boundaries, with a marker between that says how much is left out and where all of it is.
enum ReplyOutput {
    /// `report` with each stream cut to `limit` bytes (flagged truncated, its JSON rendered
    /// again), and a note for the agent; the report itself and no note when both fit.
    static func fit(_ report: StepReport, limit: Int) -> (report: StepReport, note: String?) {
        guard limit > 0 else { return (report, nil) }
        var result = report.result
        var cuts: [String] = []
        // Where the whole stream is: a part at a time from the journal (TextParts).
        func whole(_ stream: String) -> String {
            report.run.flatMap { run in report.step.map { TextParts.uri(run: run, step: $0, stream: stream) } } ?? "the journal"
        }
        if let cut = headAndTail(result.stdout, limit: limit) {
            cuts.append("stdout (\(result.stdout.count) bytes; all of it: \(whole("stdout")))")
            result.stdout = cut
            result.stdoutTruncated = true
        }
        if let cut = headAndTail(result.stderr, limit: limit) {
            cuts.append("stderr (\(result.stderr.count) bytes; all of it: \(whole("stderr")))")
            result.stderr = cut
            result.stderrTruncated = true
        }
        guard !cuts.isEmpty else { return (report, nil) }
        var fitted = report
        fitted.result = result
        fitted.resultJSON = result.json()
        let note = "This reply holds the first and last \(limit / 2) bytes of \(cuts.joined(separator: " and ")). "
            + "The journal keeps all of the step's output; each read of those resources gives up to 256 KiB and `next`, the URI of the rest."
        return (fitted, note)
    }

    /// The first and last `limit / 2` bytes of `bytes` with a marker between, each cut at a UTF-8
    /// character boundary; nil when `bytes` fits in `limit`.
    static func headAndTail(_ bytes: [UInt8], limit: Int) -> [UInt8]? {
        guard bytes.count > limit else { return nil }
        var headEnd = limit / 2, tailStart = bytes.count - limit / 2
        while headEnd > 0 && bytes[headEnd].isUTF8Continuation { headEnd -= 1 }
        while tailStart < bytes.count && bytes[tailStart].isUTF8Continuation { tailStart += 1 }
        let marker = Array("\n[… lanes: \(tailStart - headEnd) bytes left out of this reply …]\n".utf8)
        return Array(bytes[..<headEnd]) + marker + Array(bytes[tailStart...])
    }
}

extension UInt8 {
    /// A UTF-8 continuation byte (10xxxxxx): no character starts here.
    var isUTF8Continuation: Bool { self & 0xC0 == 0x80 }
}
