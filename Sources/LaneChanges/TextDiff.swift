/// A unified diff of two texts (`lanes diff`). Lines are compared after trimming the common
/// prefix and suffix; the middle is a longest-common-subsequence table, bounded so a huge file
/// cannot take the supervisor's memory (beyond the bound the caller shows sizes and hashes).
public enum TextDiff {
    /// The largest middle (lines × lines) that is diffed line by line.
    public static let maxCells = 4_000_000

    /// Whether bytes are shown as text: valid UTF-8 without NUL, at most 1 MiB.
    public static func isText(_ bytes: [UInt8]) -> Bool {
        bytes.count <= 1 << 20 && !bytes.contains(0) && String(validating: bytes, as: UTF8.self) != nil
    }

    /// The hunks (with `@@` headers, 3 lines of context) turning `old` into `new`; nil when too
    /// large; empty when equal.
    public static func unified(_ old: String, _ new: String, context: Int = 3) -> [String]? {
        let a = lines(old), b = lines(new)
        var prefix = 0
        while prefix < a.count && prefix < b.count && a[prefix] == b[prefix] { prefix += 1 }
        var suffix = 0
        while suffix < a.count - prefix && suffix < b.count - prefix && a[a.count - 1 - suffix] == b[b.count - 1 - suffix] { suffix += 1 }
        let ma = Array(a[prefix..<(a.count - suffix)]), mb = Array(b[prefix..<(b.count - suffix)])
        if ma.isEmpty && mb.isEmpty { return [] }
        guard (ma.count + 1) * (mb.count + 1) <= maxCells else { return nil }
        // ops over the whole texts: (kind, line) with kind " ", "-", "+"
        var ops: [(Character, String)] = a[0..<prefix].map { (" ", $0) }
        let w = mb.count + 1
        var table = [Int32](repeating: 0, count: (ma.count + 1) * w)
        if !ma.isEmpty && !mb.isEmpty {
            for i in stride(from: ma.count - 1, through: 0, by: -1) {
                for j in stride(from: mb.count - 1, through: 0, by: -1) {
                    table[i * w + j] = ma[i] == mb[j] ? table[(i + 1) * w + j + 1] + 1 : max(table[(i + 1) * w + j], table[i * w + j + 1])
                }
            }
        }
        var i = 0, j = 0
        while i < ma.count || j < mb.count {
            if i < ma.count && j < mb.count && ma[i] == mb[j] {
                ops.append((" ", ma[i])); i += 1; j += 1
            } else if j < mb.count && (i == ma.count || table[i * w + j + 1] >= table[(i + 1) * w + j]) {
                ops.append(("+", mb[j])); j += 1
            } else {
                ops.append(("-", ma[i])); i += 1
            }
        }
        ops += a[(a.count - suffix)...].map { (" ", $0) }
        return hunks(ops, context: context)
    }

    private static func lines(_ s: String) -> [String] {
        var out = s.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if out.last == "" { out.removeLast() }
        return out
    }

    private static func hunks(_ ops: [(Character, String)], context: Int) -> [String] {
        let changed = ops.indices.filter { ops[$0].0 != " " }
        guard !changed.isEmpty else { return [] }
        var groups: [(Int, Int)] = []
        for c in changed {
            let lo = max(0, c - context), hi = min(ops.count - 1, c + context)
            if let last = groups.last, lo <= last.1 + 1 { groups[groups.count - 1].1 = hi } else { groups.append((lo, hi)) }
        }
        var out: [String] = []
        for (lo, hi) in groups {
            var oldStart = 1, newStart = 1
            for k in 0..<lo {
                if ops[k].0 != "+" { oldStart += 1 }
                if ops[k].0 != "-" { newStart += 1 }
            }
            let body = ops[lo...hi]
            let oldCount = body.filter { $0.0 != "+" }.count, newCount = body.filter { $0.0 != "-" }.count
            out.append("@@ -\(oldCount == 0 ? oldStart - 1 : oldStart),\(oldCount) +\(newCount == 0 ? newStart - 1 : newStart),\(newCount) @@")
            for (k, line) in body { out.append(String(k) + line) }
        }
        return out
    }
}
