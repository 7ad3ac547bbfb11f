import CLaneSys
import Glibc
import LaneModel

/// Computes a change set from an overlay upper directory (docs/filesystem.md, "The change set").
///
/// The upper directory holds what the step wrote: new and copied-up files, directories, symlinks,
/// whiteouts (character device 0/0) for deletions, and `user.overlay.opaque` on a directory that
/// replaced one of the workspace. Lanes mounts without redirect_dir and metacopy (unprivileged
/// overlay refuses them), so a renamed directory is copied up whole; an upper entry carrying an
/// overlay redirect or metacopy marker anyway is refused, never interpreted.
struct UpperScanner {
    let upper: DirectoryFD
    let workspace: DirectoryFD
    /// Workspace-relative paths bound directly (not part of the overlay's changes).
    let skipped: [String]

    struct Scan {
        var entries: [ChangeEntry] = []
        var refused: [Refusal] = []
    }

    func scan() throws(LanesError) -> Scan {
        var out = Scan()
        try walk("", upper: upper, lower: workspace, into: &out)
        detectRenames(&out)
        return out
    }

    private func walk(_ dir: String, upper: DirectoryFD, lower: DirectoryFD?, into out: inout Scan) throws(LanesError) {
        for name in try upper.names() {
            let path = joinPath(dir, name)
            if skipped.contains(where: { isInsideRelative(path, $0) }) { continue }
            guard isSafeRelativePath(path) else {
                out.refused.append(Refusal(path: path, reason: "a name that would leave the workspace"))
                continue
            }
            guard let st = try upper.lstat(name) else { continue }
            let lowerState: PathState? = try lower.flatMap { l throws(LanesError) in try l.lstat(name).map { PathState($0) } }
            let type = st.st_mode & S_IFMT
            switch type {
            case S_IFCHR where st.st_rdev == 0:
                // A whiteout: the step deleted what the workspace has here.
                if let lowerState {
                    var e = ChangeEntry(kind: .deleted, path: path)
                    e.before = lowerState
                    out.entries.append(e)
                }
            case S_IFCHR, S_IFBLK:
                out.refused.append(Refusal(path: path, reason: "a device node"))
            case S_IFIFO:
                out.refused.append(Refusal(path: path, reason: "a FIFO"))
            case S_IFSOCK:
                out.refused.append(Refusal(path: path, reason: "a socket"))
            case S_IFREG:
                if try hasOverlayMarker(upper, name, directory: false) {
                    out.refused.append(Refusal(path: path, reason: "an overlay metacopy/redirect entry (not supported)"))
                    continue
                }
                var e = ChangeEntry(kind: lowerState == nil ? .added : .modified, path: path)
                e.type = .file
                e.size = UInt64(st.st_size)
                e.mode = UInt32(st.st_mode & 0o7777)
                e.sha256 = try upper.hashFile(name)
                e.before = lowerState
                if var l = lowerState, l.type == .file, l.size == e.size, let lower {
                    l.sha256 = try lower.hashFile(name)
                    e.before = l
                    if l.sha256 == e.sha256 {
                        if l.mode == e.mode { continue }  // copied up for a metadata change only
                        e.kind = .modeChanged
                    }
                }
                out.entries.append(e)
            case S_IFLNK:
                let target = try upper.readLink(name)
                if let reason = Self.symlinkRefusal(path: path, target: target) {
                    out.refused.append(Refusal(path: path, reason: reason))
                    continue
                }
                if lowerState?.type == .symlink, let lower, try lower.readLink(name) == target { continue }
                var e = ChangeEntry(kind: lowerState == nil ? .added : .modified, path: path)
                e.type = .symlink
                e.linkTarget = target
                e.before = lowerState
                out.entries.append(e)
            case S_IFDIR:
                if try hasOverlayMarker(upper, name, directory: true) {
                    out.refused.append(Refusal(path: path, reason: "an overlay redirect directory (not supported)"))
                    continue
                }
                let sub = try upper.directory(name)
                let mode = UInt32(st.st_mode & 0o7777)
                var lowerSub: DirectoryFD?
                if let lowerState, lowerState.type == .directory, let lower {
                    lowerSub = try lower.directory(name)
                    if lowerState.mode != mode {
                        var e = ChangeEntry(kind: .modeChanged, path: path)
                        e.type = .directory
                        e.mode = mode
                        e.before = lowerState
                        out.entries.append(e)
                    }
                    if try isOpaque(sub), let lowerSub {
                        // The step removed the directory and made a new one: what the workspace
                        // has in it and the new one does not is deleted.
                        let kept = Set(try sub.names())
                        for child in try lowerSub.names() where !kept.contains(child) {
                            guard let cst = try lowerSub.lstat(child) else { continue }
                            var e = ChangeEntry(kind: .deleted, path: joinPath(path, child))
                            e.before = PathState(cst)
                            out.entries.append(e)
                        }
                    }
                } else {
                    var e = ChangeEntry(kind: lowerState == nil ? .added : .modified, path: path)
                    e.type = .directory
                    e.mode = mode
                    e.before = lowerState
                    out.entries.append(e)
                }
                try walk(path, upper: sub, lower: lowerSub, into: &out)
            default:
                out.refused.append(Refusal(path: path, reason: "an unknown file type"))
            }
        }
    }

    /// A symlink is applied only when it is relative and stays inside the workspace when resolved
    /// from its own directory (lexically): anything else would point a later reader outside.
    static func symlinkRefusal(path: String, target: String) -> String? {
        if target.isEmpty || target.contains("\0") { return "an empty symlink" }
        if target.hasPrefix("/") { return "a symlink to an absolute path (\(target))" }
        var depth = path.split(separator: "/").count - 1
        for part in target.split(separator: "/") {
            if part == ".." { depth -= 1 } else if part != "." { depth += 1 }
            if depth < 0 { return "a symlink leaving the workspace (\(target))" }
        }
        return nil
    }

    private func isOpaque(_ dir: DirectoryFD) throws(LanesError) -> Bool {
        var value = [UInt8](repeating: 0, count: 8)
        let n = value.withUnsafeMutableBytes { lane_fgetxattr(dir.fd, "user.overlay.opaque", $0.baseAddress, $0.count) }
        if n < 0 { return false }
        return n >= 1 && value[0] == UInt8(ascii: "y")
    }

    /// Whether an upper entry carries overlay xattrs other than opaque/impure/origin (a redirect
    /// or metacopy Lanes never asked for).
    private func hasOverlayMarker(_ dir: DirectoryFD, _ name: String, directory: Bool) throws(LanesError) -> Bool {
        let fd = openat(dir.fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | (directory ? O_DIRECTORY : 0))
        guard fd >= 0 else { throw DirectoryFD.sysError("open \(name)") }
        defer { close(fd) }
        var list = [CChar](repeating: 0, count: 1024)
        let n = list.withUnsafeMutableBufferPointer { lane_flistxattr(fd, $0.baseAddress, $0.count) }
        if n <= 0 { return n < 0 && errno == ERANGE }
        let names = String(decoding: list[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self).split(separator: "\0")
        return names.contains { $0.hasPrefix("user.overlay.redirect") || $0.hasPrefix("user.overlay.metacopy")
            || $0.hasPrefix("trusted.overlay.redirect") || $0.hasPrefix("trusted.overlay.metacopy") }
    }

    /// A deleted file and an added file with the same content are a rename.
    private func detectRenames(_ out: inout Scan) {
        let added = out.entries.indices.filter { out.entries[$0].kind == .added && out.entries[$0].type == .file }
        guard !added.isEmpty else { return }
        var removed: Set<Int> = []
        for d in out.entries.indices where out.entries[d].kind == .deleted && out.entries[d].before?.type == .file {
            let before = out.entries[d].before
            guard let size = before?.size,
                  let a = added.first(where: { !removed.contains($0) && out.entries[$0].size == size && out.entries[$0].from == nil }) else { continue }
            let (dir, name) = splitPath(out.entries[d].path)
            guard let hash = try? workspace.directory(dir).hashFile(name), hash == out.entries[a].sha256 else { continue }
            out.entries[a].kind = .renamed
            out.entries[a].from = out.entries[d].path
            var fb = before
            fb?.sha256 = hash
            out.entries[a].fromBefore = fb
            removed.insert(d)
        }
        out.entries = out.entries.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }
}
