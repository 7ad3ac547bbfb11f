import Glibc
import LaneModel
import LanePlan

/// Keeps the files the host executes or trusts (a profile's `filesystem.protected`) out of a
/// step's reach, in two halves:
/// - before the step (`prepare`): every protected path that exists is bound read-only onto
///   itself, and the directories above it inside the writable tree are bound onto themselves
///   read-write, so the step can neither write it nor rename a parent away and put its own in
///   place (a mount point cannot be renamed);
/// - after the step (`check`): a protected path that did not exist and now does, and any
///   repository that appeared in the writable tree (`git init`, `git clone`, a `.git` file), is
///   checked: hooks are quarantined, executing git configuration is filtered out
///   (`GitConfigFilter`), everything else created at a protected path is renamed aside with the
///   suffix `.lanes-quarantine`. Each is a `protected_path` denial.
/// The step is gone when `check` runs (PID 1 killed every process), and nothing it left is
/// followed: paths are walked component by component with lstat and never through a symlink.
public struct ProtectedPaths: Sendable {
    /// Self-binds, outermost first (pins, then read-only binds).
    public private(set) var mounts: [MountStep] = []
    /// Protected paths that did not exist (workspace-relative), to be checked afterwards.
    var absent: [String] = []
    /// Protected paths that were symlinks, with their targets: a changed link is quarantined.
    var links: [String: String] = [:]
    /// Every `.git` entry of the writable tree before the step (workspace-relative).
    var repositories: Set<String> = []
    var enabled = false
    let workspace: String
    let roots: [String]
    public let unprotected: [String]

    /// Plans the protection of a step's writable tree. `roots`: workspace-relative writable
    /// roots ("" = the whole workspace). Lane `unprotect` entries are left out.
    public static func prepare(workspace: String, roots: [String], protected: [String], unprotect: [String: String]) -> ProtectedPaths {
        let patterns = protected.filter { unprotect[$0] == nil }
        var p = ProtectedPaths(workspace: workspace, roots: roots,
                               unprotected: protected.filter { unprotect[$0] != nil }.map { "\($0): \(unprotect[$0] ?? "")" })
        guard !patterns.isEmpty, !roots.isEmpty else { return p }
        p.enabled = true
        var pins: [String] = [], readOnly: [String] = []
        for root in roots {
            p.repositories.formUnion(gitEntries(workspace, under: root))
        }
        // Bases: each writable root (all patterns) and each repository's directory (`.git/…`).
        var bases: [(base: String, gitOnly: Bool)] = roots.map { ($0, false) }
        for entry in p.repositories.sorted() {
            let dir = parent(entry)
            if !roots.contains(dir) { bases.append((dir, true)) }
        }
        for (base, gitOnly) in bases {
            // A `.git` file (a worktree or submodule pointer) is itself protected.
            if patterns.contains(where: { $0.hasPrefix(".git/") }), lstatKind(workspace, join(base, ".git")) == S_IFREG {
                readOnly.append(join(base, ".git"))
            }
            for pattern in patterns where !gitOnly || pattern == ".git" || pattern.hasPrefix(".git/") {
                let rel = join(base, pattern)
                let parts = pattern.split(separator: "/").map(String.init)
                var path = base, clean = true
                for (i, part) in parts.enumerated() {
                    path = join(path, part)
                    guard let kind = lstatKind(workspace, path) else {
                        if !p.absent.contains(rel) { p.absent.append(rel) }
                        clean = false
                        break
                    }
                    if kind == S_IFLNK {  // a mount cannot sit on a link: its target is compared afterwards
                        clean = false
                        p.links[path] = readLink(workspace + "/" + path) ?? ""
                        break
                    }
                    if i < parts.count - 1 {
                        guard kind == S_IFDIR else { clean = false; break }
                        if !pins.contains(path) { pins.append(path) }
                    }
                }
                if clean && !readOnly.contains(rel) { readOnly.append(rel) }
            }
        }
        let pinned = pins.filter { !readOnly.contains($0) }.sorted { $0.count < $1.count }
        p.mounts = pinned.map { .rebind(target: workspace + "/" + $0, readOnly: false) }
            + readOnly.sorted { $0.count < $1.count }.map { .rebind(target: workspace + "/" + $0, readOnly: true) }
        return p
    }

    /// After the step: quarantines what it planted. Returns the denials.
    public func check() -> [Denial] {
        var denials: [Denial] = []
        guard enabled else { return denials }
        for (rel, target) in links.sorted(by: { $0.key < $1.key }) where lstatKind(workspace, rel) != nil {
            if lstatKind(workspace, rel) != S_IFLNK || readLink(workspace + "/" + rel) != target {
                quarantine(rel)
                denials.append(Denial(kind: .protectedPath, name: rel))
            }
        }
        for rel in absent {
            if let planted = plantedComponent(rel) {
                quarantine(planted)
                denials.append(Denial(kind: .protectedPath, name: rel))
            }
        }
        var after: Set<String> = []
        for root in roots where lstatKind(workspace, root) == S_IFDIR || root.isEmpty { after.formUnion(Self.gitEntries(workspace, under: root)) }
        for entry in after.subtracting(repositories).sorted() {
            denials += checkRepository(entry)
        }
        return denials
    }

    // MARK: after the step

    /// The first component of `rel` that is now a symlink, or `rel` itself when it exists.
    private func plantedComponent(_ rel: String) -> String? {
        var path = ""
        for part in rel.split(separator: "/") {
            path = join(path, String(part))
            guard let kind = lstatKind(workspace, path) else { return nil }
            if kind == S_IFLNK { return path }
        }
        return path
    }

    /// A repository that appeared: a `.git` symlink is quarantined; a `.git` file is kept only
    /// when it points at a directory inside the workspace, which is checked like a `.git`
    /// directory: hooks other than `*.sample` quarantined, config filtered.
    private func checkRepository(_ entry: String) -> [Denial] {
        switch lstatKind(workspace, entry) {
        case S_IFDIR?: return checkGitDirectory(entry)
        case S_IFREG?:
            if let target = gitFileTarget(entry), lstatKind(workspace, target) == S_IFDIR {
                return checkGitDirectory(target)
            }
            quarantine(entry)
            return [Denial(kind: .protectedPath, name: entry)]
        case nil: return []
        default:
            quarantine(entry)
            return [Denial(kind: .protectedPath, name: entry)]
        }
    }

    private func checkGitDirectory(_ dir: String) -> [Denial] {
        var denials: [Denial] = []
        let hooks = join(dir, "hooks")
        switch lstatKind(workspace, hooks) {
        case nil: break
        case S_IFDIR?:
            if Self.entries(workspace + "/" + hooks).contains(where: { !$0.hasSuffix(".sample") }) {
                quarantine(hooks)
                denials.append(Denial(kind: .protectedPath, name: hooks))
            }
        default:
            quarantine(hooks)
            denials.append(Denial(kind: .protectedPath, name: hooks))
        }
        for name in ["config", "config.worktree"] {
            let config = join(dir, name)
            switch lstatKind(workspace, config) {
            case nil: continue
            case S_IFREG?:
                let text = Self.read(workspace + "/" + config, limit: 1 << 20) ?? ""
                let (filtered, removed) = GitConfigFilter.filter(text)
                guard !removed.isEmpty else { continue }
                var st = stat()
                _ = lstat(workspace + "/" + config, &st)
                quarantine(config)
                Self.write(workspace + "/" + config, filtered, owner: (st.st_uid, st.st_gid))
                denials.append(Denial(kind: .protectedPath, name: config + " (" + removed.joined(separator: ", ") + ")"))
            default:
                quarantine(config)
                denials.append(Denial(kind: .protectedPath, name: config))
            }
        }
        // Submodule repositories git keeps under modules/.
        let modules = join(dir, "modules")
        if lstatKind(workspace, modules) == S_IFDIR {
            for name in Self.entries(workspace + "/" + modules) where lstatKind(workspace, join(modules, name)) == S_IFDIR {
                denials += checkGitDirectory(join(modules, name))
            }
        }
        return denials
    }

    /// `gitdir: PATH` of a `.git` file, resolved against its directory, when it stays inside
    /// the workspace through real directories only.
    private func gitFileTarget(_ entry: String) -> String? {
        guard let text = Self.read(workspace + "/" + entry, limit: 4096), text.hasPrefix("gitdir: ") else { return nil }
        let value = text.dropFirst(8).split(separator: "\n").first.map(String.init) ?? ""
        let absolute = value.hasPrefix("/") ? value : workspace + "/" + join(parent(entry), value)
        var parts: [Substring] = []
        for part in absolute.split(separator: "/") {
            if part == "." { continue }
            if part == ".." { if parts.popLast() == nil { return nil }; continue }
            parts.append(part)
        }
        let normalized = "/" + parts.joined(separator: "/")
        guard SandboxLayout.isInside(normalized, workspace), normalized != workspace else { return nil }
        let rel = String(normalized.dropFirst(workspace.count + 1))
        var path = ""
        for part in rel.split(separator: "/") {
            path = join(path, String(part))
            if lstatKind(workspace, path) != S_IFDIR { return nil }
        }
        return rel
    }

    /// Renames `rel` aside to `rel.lanes-quarantine` (or `.lanes-quarantine-N`).
    private func quarantine(_ rel: String) {
        let from = workspace + "/" + rel
        for n in 0..<100 {
            let to = from + ".lanes-quarantine" + (n == 0 ? "" : "-\(n)")
            var st = stat()
            if lstat(to, &st) == 0 { continue }
            if rename(from, to) == 0 { return }
        }
        // Could not rename it aside: remove it rather than leave it.
        if unlink(from) != 0 { _ = rmdir(from) }
    }

    // MARK: helpers

    /// Every `.git` entry (directory, file or link) under `root`, workspace-relative; `.git`
    /// directories and mount points of other file systems are not descended into.
    static func gitEntries(_ workspace: String, under root: String) -> Set<String> {
        var found: Set<String> = []
        var stack = [root]
        var visited = 0
        while let dir = stack.popLast(), visited < 1_000_000 {
            visited += 1
            let full = dir.isEmpty ? workspace : workspace + "/" + dir
            guard let d = opendir(full) else { continue }
            defer { closedir(d) }
            while let e = readdir(d) {
                // Only names of directories and `.git` become Strings: files are most entries.
                var type = e.pointee.d_type
                let kind = withUnsafeBytes(of: e.pointee.d_name) { raw -> Int in
                    let b = raw.bindMemory(to: UInt8.self)
                    if b[0] == 46 && (b[1] == 0 || (b[1] == 46 && b[2] == 0)) { return 0 }  // . and ..
                    if b[0] == 46 && b[1] == 103 && b[2] == 105 && b[3] == 116 && b[4] == 0 { return 2 }  // .git
                    return 1
                }
                if kind == 0 { continue }
                if kind == 1 && type != UInt8(DT_DIR) && type != UInt8(DT_UNKNOWN) { continue }
                let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                let rel = dir.isEmpty ? name : dir + "/" + name
                if kind == 2 { found.insert(rel); continue }
                if type == UInt8(DT_UNKNOWN) {
                    var st = stat()
                    if lstat(workspace + "/" + rel, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR { type = UInt8(DT_DIR) }
                }
                if type == UInt8(DT_DIR) { stack.append(rel) }
            }
        }
        return found
    }

    static func entries(_ path: String) -> [String] {
        guard let d = opendir(path) else { return [] }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    static func read(_ path: String, limit: Int) -> String? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: limit)
        let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, limit) }
        return n >= 0 ? String(decoding: buf[0..<n], as: UTF8.self) : nil
    }

    /// Writes a new file, owned like the one it replaces.
    static func write(_ path: String, _ text: String, owner: (uid_t, gid_t)) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        if geteuid() == 0 { _ = fchown(fd, owner.0, owner.1) }
        _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
        close(fd)
    }
}

/// The file type bits of `workspace/rel` without following a final symlink (nil: absent).
func lstatKind(_ workspace: String, _ rel: String) -> mode_t? {
    var st = stat()
    guard lstat(rel.isEmpty ? workspace : workspace + "/" + rel, &st) == 0 else { return nil }
    return st.st_mode & S_IFMT
}

private func readLink(_ path: String) -> String? { SandboxLayout.readLink(path) }
private func join(_ a: String, _ b: String) -> String { a.isEmpty ? b : a + "/" + b }
private func parent(_ rel: String) -> String {
    guard let slash = rel.lastIndex(of: "/") else { return "" }
    return String(rel[..<slash])
}
