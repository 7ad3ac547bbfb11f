import Crypto
import Foundation
import LaneModel

/// `lanes export RUN`: one JSON document with the run's lane and profile as compiled, every
/// record exactly as hashed, and the chain head, sealed by `document_sha256` (SHA-256 of the
/// document without that key, re-serialized with sorted keys). `verify` recomputes every record
/// hash, the chain links, the head and the seal: changing any byte of content fails it.
public enum RunExport {
    public static let format = "lanes-export/1"

    /// The document. `lane` and `profile` are JSON-ready dictionaries (the CLI builds them).
    public static func document(run: String, records: [JournalRecord], head: (seq: Int, hash: String)?,
                                lane: [String: Any], profile: [String: Any], exportedAt: Double) throws -> Data {
        var doc: [String: Any] = [
            "format": format,
            "run": run,
            "exported_at": String(format: "%.6f", exportedAt),
            "lane": lane,
            "profile": profile,
            "records": records.map { r -> [String: Any] in
                ["seq": r.seq, "kind": r.kind.rawValue, "step": r.step ?? NSNull(), "at": String(format: "%.6f", r.at),
                 "body": r.body, "prev_hash": r.prevHash, "hash": r.hash]
            },
            "head": head.map { ["seq": $0.seq, "hash": $0.hash] as [String: Any] } ?? NSNull(),
            "chain_rule": "hash = SHA256(prev_hash ‖ \"\\n\" run \"\\n\" seq \"\\n\" kind \"\\n\" step \"\\n\" at \"\\n\" body); the first prev_hash is 64 zeros",
        ]
        // Seal what a reader would parse (round-tripped once so numbers are as they will be read).
        let once = try JSONSerialization.jsonObject(with: serialize(doc))
        doc["document_sha256"] = try seal(once)
        return try JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted])
    }

    static func serialize(_ object: Any) throws -> Data {
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    }

    static func seal(_ object: Any) throws -> String {
        var h = SHA256()
        h.update(data: try serialize(object))
        return hexString(h.finalize())
    }

    /// Checks an exported document; returns the problems (empty: it verifies) and the record count.
    public static func verify(_ data: Data) -> (records: Int, problems: [String]) {
        guard let any = try? JSONSerialization.jsonObject(with: data), var doc = any as? [String: Any] else {
            return (0, ["not a JSON object"])
        }
        var problems: [String] = []
        guard doc["format"] as? String == format else { return (0, ["not a \(format) document (format: \(doc["format"] ?? "missing"))"]) }
        guard let run = doc["run"] as? String, let rows = doc["records"] as? [[String: Any]] else { return (0, ["run or records missing"]) }
        var records: [JournalRecord] = []
        for (i, row) in rows.enumerated() {
            guard let seq = row["seq"] as? Int, let kindText = row["kind"] as? String, let kind = JournalRecord.Kind(rawValue: kindText),
                  let atText = row["at"] as? String, let at = Double(atText), let body = row["body"] as? String,
                  let prev = row["prev_hash"] as? String, let hash = row["hash"] as? String else {
                problems.append("record \(i + 1): malformed")
                return (rows.count, problems)
            }
            let r = JournalRecord(run: run, seq: seq, kind: kind, step: row["step"] as? String, at: at, body: body, prevHash: prev, hash: hash)
            if String(format: "%.6f", at) != atText { problems.append("record \(seq): time \(atText) is not in the recorded form") }
            records.append(r)
        }
        let head = (doc["head"] as? [String: Any]).flatMap { h -> (seq: Int, hash: String)? in
            guard let s = h["seq"] as? Int, let x = h["hash"] as? String else { return nil }
            return (s, x)
        }
        if let p = SQLiteJournal.check(run: run, records: records, head: head) { problems.append(p.description) }
        guard let claimed = doc.removeValue(forKey: "document_sha256") as? String else {
            problems.append("document_sha256 missing")
            return (records.count, problems)
        }
        if (try? seal(doc)) != claimed {
            problems.append("document_sha256 does not match: the lane, the profile or another part of the document was changed")
        }
        return (records.count, problems)
    }
}
