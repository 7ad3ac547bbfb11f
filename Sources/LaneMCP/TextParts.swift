import Foundation
import LaneJournal
import LaneModel
import MCP

/// Long texts of the journal read a part at a time: a step's captured output
/// (`lanes://runs/RUN/steps/STEP/stdout?offset=N`, and `…/stderr`) and a record's whole body
/// (`lanes://runs/RUN/records/SEQ?offset=N`). A close record holds the whole capture, up to the
/// profile's output limit (4 MiB of each stream in the shipped profiles), escaped once more in
/// its JSON; an intent holds the argv (up to the kernel's 2 MiB). One that large does not fit one
/// read over Streamable HTTP (the official Python client refuses a server-sent event over 1 MiB).
/// A part does; and a record too large for one read of the run or the step is given without its
/// body and with these URIs in its place (`RunViews.rendered`).
enum TextParts {
    static let streams = ["stdout", "stderr"]
    /// Bytes of text in one part, at most (fewer when their JSON would pass
    /// `RunViews.resourceBytes`, or to end on a character boundary).
    static let partBytes = 256 << 10

    static func uri(run: String, step: String, stream: String, offset: Int = 0) -> String {
        "lanes://runs/\(run)/steps/\(step)/\(stream)" + (offset > 0 ? "?offset=\(offset)" : "")
    }

    static func bodyURI(run: String, seq: Int, offset: Int = 0) -> String {
        "lanes://runs/\(run)/records/\(seq)" + (offset > 0 ? "?offset=\(offset)" : "")
    }

    /// One part of `stream` of the step's last close record: JSON `{"run", "step", "stream",
    /// "offset", "total_bytes", "text", "next"}`.
    static func output(run: String, step: String, stream: String, offset: Int, records: [JournalRecord]) throws(MCPError) -> String {
        guard let close = records.last(where: { $0.kind == .close }) else {
            throw MCPError.invalidParams("step \"\(step)\" of run \(run) has no result recorded (yet)")
        }
        let result = (try? JSONSerialization.jsonObject(with: Data(close.body.utf8))) as? [String: Any]
        let text = Array(((result?["result"] as? [String: Any])?[stream] as? String ?? "").utf8)
        var fields = JSONObject()
        fields.add("run", .string(run))
        fields.add("step", .string(step))
        fields.add("stream", .string(stream))
        return try part(of: text, from: offset, what: "step \"\(step)\"'s \(stream)", fields: fields) {
            uri(run: run, step: step, stream: stream, offset: $0)
        }
    }

    /// One part of record `r`'s body text, exactly as it was hashed: JSON `{"run", "seq", "kind",
    /// "hash", "offset", "total_bytes", "text", "next"}`; the texts of all parts, joined, are the body.
    static func body(run: String, record r: JournalRecord, offset: Int) throws(MCPError) -> String {
        var fields = JSONObject()
        fields.add("run", .string(run))
        fields.add("seq", .int(r.seq))
        fields.add("kind", .string(r.kind.rawValue))
        fields.add("hash", .string(r.hash))
        return try part(of: Array(r.body.utf8), from: offset, what: "record \(r.seq)'s body", fields: fields) {
            bodyURI(run: run, seq: r.seq, offset: $0)
        }
    }

    /// `fields`, then `offset` (moved on to a character boundary), `total_bytes`, `text` (at most
    /// `partBytes` from there, ending on a character boundary) and `next` (`nextURI(end)`, or
    /// null at the end).
    private static func part(of bytes: [UInt8], from offset: Int, what: String, fields: JSONObject,
                             nextURI: (Int) -> String) throws(MCPError) -> String {
        guard offset <= bytes.count else {
            throw MCPError.invalidParams("offset \(offset) is past the end of \(what) (\(bytes.count) bytes)")
        }
        var start = offset
        while start < bytes.count && bytes[start].isUTF8Continuation { start += 1 }
        var length = min(partBytes, bytes.count - start)
        while true {
            var end = start + length
            while end < bytes.count && end > start && bytes[end].isUTF8Continuation { end -= 1 }
            var o = fields
            o.add("offset", .int(start))
            o.add("total_bytes", .int(bytes.count))
            o.add("text", .string(String(decoding: bytes[start..<end], as: UTF8.self)))
            o.add("next", end < bytes.count ? .string(nextURI(end)) : .null)
            let text = o.rendered
            // Control characters escape to six bytes each: halve the part until it fits.
            if text.utf8.count <= RunViews.resourceBytes || length <= 4096 { return text }
            length /= 2
        }
    }
}
