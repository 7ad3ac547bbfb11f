import Foundation
import LaneJournal
import LaneModel
import MCP

/// A step's captured output read a part at a time: `lanes://runs/RUN/steps/STEP/stdout?offset=N`
/// (and `…/stderr`). A close record holds the whole capture, up to the profile's output limit
/// (4 MiB of each stream in the shipped profiles), escaped once more in its JSON: one that large
/// does not fit one read over Streamable HTTP (the official Python client refuses a server-sent
/// event over 1 MiB). A part does; and a record too large for one read of the run or the step is
/// given with its output left out and these URIs in its place (`RunViews.rendered`).
enum StepOutputParts {
    static let streams = ["stdout", "stderr"]
    /// Bytes of output in one part, at most (fewer when their JSON would pass
    /// `RunViews.resourceBytes`, or to end on a character boundary).
    static let partBytes = 256 << 10

    static func uri(run: String, step: String, stream: String, offset: Int = 0) -> String {
        "lanes://runs/\(run)/steps/\(step)/\(stream)" + (offset > 0 ? "?offset=\(offset)" : "")
    }

    /// One part of `stream` of the step's last close record, from byte `offset` (moved on to a
    /// character boundary): JSON `{"run", "step", "stream", "offset", "total_bytes", "text",
    /// "next"}`, `next` the URI of the rest or null.
    static func part(run: String, step: String, stream: String, offset: Int, records: [JournalRecord]) throws(MCPError) -> String {
        guard let close = records.last(where: { $0.kind == .close }) else {
            throw MCPError.invalidParams("step \"\(step)\" of run \(run) has no result recorded (yet)")
        }
        let result = (try? JSONSerialization.jsonObject(with: Data(close.body.utf8))) as? [String: Any]
        let output = Array(((result?["result"] as? [String: Any])?[stream] as? String ?? "").utf8)
        guard offset <= output.count else {
            throw MCPError.invalidParams("offset \(offset) is past the end of step \"\(step)\"'s \(stream) (\(output.count) bytes)")
        }
        var start = offset
        while start < output.count && output[start].isUTF8Continuation { start += 1 }
        var length = min(partBytes, output.count - start)
        while true {
            var end = start + length
            while end < output.count && end > start && output[end].isUTF8Continuation { end -= 1 }
            var o = JSONObject()
            o.add("run", .string(run))
            o.add("step", .string(step))
            o.add("stream", .string(stream))
            o.add("offset", .int(start))
            o.add("total_bytes", .int(output.count))
            o.add("text", .string(String(decoding: output[start..<end], as: UTF8.self)))
            o.add("next", end < output.count ? .string(uri(run: run, step: step, stream: stream, offset: end)) : .null)
            let text = o.rendered
            // Control characters escape to six bytes each: halve the part until it fits.
            if text.utf8.count <= RunViews.resourceBytes || length <= 4096 { return text }
            length /= 2
        }
    }

    /// `body` (a close record's JSON, as our writer renders it) with the contents of its
    /// "stdout" and "stderr" strings left out. Works on the text, so every other byte stays as
    /// it was recorded: a key followed by `":"` cannot occur inside a JSON string, where quotes
    /// are escaped.
    static func withoutOutput(_ body: String) -> String {
        var bytes = Array(body.utf8)
        for stream in streams {
            let key = Array("\"\(stream)\":\"".utf8)
            var searchFrom = 0
            while let at = find(key, in: bytes, from: searchFrom) {
                let contentStart = at + key.count
                var i = contentStart
                while i < bytes.count && bytes[i] != UInt8(ascii: "\"") {
                    i += bytes[i] == UInt8(ascii: "\\") ? 2 : 1
                }
                bytes.removeSubrange(contentStart..<min(i, bytes.count))
                searchFrom = contentStart
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
        guard haystack.count >= needle.count, from <= haystack.count - needle.count else { return nil }
        var i = from
        while i <= haystack.count - needle.count {
            if haystack[i] == needle[0] && haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }
}
