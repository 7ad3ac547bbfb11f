import CLaneSys
import Glibc
import LaneModel

/// Applies a computed change set to the workspace, all or nothing, and reverts it.
///
/// The safety rules (docs/filesystem.md, "Applying safely"):
/// - every workspace path is reached with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) from a
///   descriptor of the workspace, and every upper path the same way from the upper directory:
///   no symlink in either tree is ever followed, no name can leave the workspace;
/// - files are written as new files (a copy, never a hard link) under a temporary name and renamed
///   into place; setuid, setgid and sticky bits are stripped; when Lanes runs as root the
///   workspace's owner becomes their owner;
/// - device nodes, FIFOs, sockets and symlinks pointing outside were refused when the change set
///   was computed and are never applied;
/// - before anything is written, every touched path is compared with what it was when the change
///   set was computed: one difference is a conflict and nothing is applied;
/// - what each touched path was is kept (pre-images, content-addressed) so a failure half-way is
///   rolled back and `lanes revert` can put it back later.
struct ChangeApplier {
    let workspace: DirectoryFD
    let upper: DirectoryFD?
    let objects: ObjectStore
    /// The workspace directory's owner, given to everything written when running as root.
    let owner: (uid: uid_t, gid: gid_t)?
    /// Hash a moved file again before it lands. Off only right after an auto step, in the same
    /// process that just hashed it (the step is dead, the upper directory private).
    var rehashMoves = true

    init(workspace: DirectoryFD, upper: DirectoryFD?, objects: ObjectStore) throws(LanesError) {
        self.workspace = workspace
        self.upper = upper
        self.objects = objects
        var st = stat()
        guard fstat(workspace.fd, &st) == 0 else { throw DirectoryFD.sysError("stat workspace") }
        owner = geteuid() == 0 ? (st.st_uid, st.st_gid) : nil
    }

    /// Paths whose workspace state differs from the change set's `before` (conflicts).
    func conflicts(_ set: ChangeSet) throws(LanesError) -> [String] {
        var out: [String] = []
        for e in set.entries {
            for (path, before) in [(e.path, e.before)] + (e.from.map { [($0, e.fromBefore)] } ?? []) {
                let now = try workspace.state(of: path, hash: false)
                switch (before, now) {
                case (nil, nil): continue
                case let (b?, n?) where n.unchanged(comparedTo: b): continue
                default: out.append(path)
                }
            }
        }
        return out
    }

    /// Records what every touched path is now (recursively for directories that go away).
    func preImages(_ set: ChangeSet) throws(LanesError) -> (images: [PreImage], bytes: UInt64) {
        var images: [PreImage] = [], bytes: UInt64 = 0, seen: Set<String> = []
        func record(_ path: String, recurse: Bool) throws(LanesError) {
            guard seen.insert(path).inserted else { return }
            var image = PreImage(path: path, state: try workspace.state(of: path, hash: true))
            if let s = image.state {
                let (dir, name) = splitPath(path)
                if let st = try workspace.directory(dir).lstat(name) { image.uid = st.st_uid; image.gid = st.st_gid }
                if s.type == .file { bytes += s.size }
            }
            images.append(image)
            if recurse, image.state?.type == .directory {
                for child in try workspace.directory(path).names() { try record(joinPath(path, child), recurse: true) }
            }
        }
        for e in set.entries {
            // A path that stops being a directory takes its whole tree with it.
            try record(e.path, recurse: e.kind == .deleted || (e.type != nil && e.type != .directory))
            if let from = e.from { try record(from, recurse: false) }
        }
        return (images, bytes)
    }

    /// Keeps the content of every file pre-image in the object store.
    func keep(_ images: [PreImage]) throws(LanesError) {
        for image in images where image.state?.type == .file {
            let (dir, name) = splitPath(image.path)
            let parent = try workspace.directory(dir)
            // The replaced inode itself, hard-linked into the store (no copy), when the kernel
            // allows it (same filesystem; protected_hardlinks lets only the owner or root link).
            if let state = image.state, let hash = state.sha256, objects.link(parent, name, hash: hash, ino: state.ino) { continue }
            let fd = openat(parent.fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
            guard fd >= 0 else { throw DirectoryFD.sysError("open \(image.path)") }
            defer { close(fd) }
            try objects.store(fd: fd, expected: image.state?.sha256)
        }
    }

    /// Applies every entry. Throws on the first failure (the caller rolls back). Returns how many
    /// files were copied rather than moved (what is left of their bytes in the upper directory).
    @discardableResult
    func applyEntries(_ set: ChangeSet) throws(LanesError) -> Int {
        var copied = 0
        let depth = { (p: String) in p.split(separator: "/").count }
        let deletions = set.entries.filter { $0.kind == .deleted }.map(\.path) + set.entries.compactMap(\.from)
        for path in deletions.sorted(by: { depth($0) > depth($1) }) { try remove(path) }
        let writes = set.entries.filter { $0.kind != .deleted && $0.kind != .modeChanged }
        for e in writes.sorted(by: { depth($0.path) < depth($1.path) }) {
            guard isSafeRelativePath(e.path) else { throw refusal(e.path, "a name that would leave the workspace") }
            let (parent, name) = try workspace.parent(of: e.path)
            switch e.type {
            case .directory?:
                try makeDirectory(parent, name, mode: e.mode ?? 0o755)
            case .file?:
                guard let upper else { throw refusal(e.path, "no upper directory") }
                let src = upper.openBeneath(e.path, flags: O_RDONLY | O_NONBLOCK)
                guard src >= 0 else { throw DirectoryFD.sysError("open the step's \(e.path)") }
                defer { close(src) }
                if try !moveFile(parent, name, from: src, upper: upper, entry: e) {
                    copied += 1
                    try writeFile(parent, name, from: src, expected: e.sha256, mode: e.mode ?? 0o644, path: e.path)
                }
            case .symlink?:
                guard let target = e.linkTarget, UpperScanner.symlinkRefusal(path: e.path, target: target) == nil else {
                    throw refusal(e.path, "a symlink leaving the workspace")
                }
                try placeSymlink(parent, name, target: target)
            default:
                throw refusal(e.path, "an entry without a type")
            }
        }
        for e in set.entries where e.kind == .modeChanged {
            let (parent, name) = try workspace.parent(of: e.path)
            try setMode(parent, name, e.mode ?? 0o644)
        }
        return copied
    }

    /// Puts pre-images back: removes what is there now where it differs in type or should not
    /// exist, then recreates directories, files and symlinks (parents first).
    func restore(_ images: [PreImage]) throws(LanesError) {
        let depth = { (p: String) in p.split(separator: "/").count }
        for image in images.sorted(by: { depth($0.path) > depth($1.path) }) {
            guard let now = try workspace.state(of: image.path, hash: false) else { continue }
            if image.state == nil || image.state?.type != now.type || now.type != .directory { try remove(image.path) }
        }
        for image in images.sorted(by: { depth($0.path) < depth($1.path) }) {
            guard let s = image.state else { continue }
            let (parent, name) = try workspace.parent(of: image.path)
            let who = geteuid() == 0 ? image.uid.flatMap { u in image.gid.map { (uid_t(u), gid_t($0)) } } : nil
            switch s.type {
            case .directory:
                try makeDirectory(parent, name, mode: s.mode, owner: who)
            case .file:
                guard let hash = s.sha256 else { throw refusal(image.path, "no content kept") }
                let src = try objects.open(hash)
                defer { close(src) }
                try writeFile(parent, name, from: src, expected: hash, mode: s.mode, path: image.path, owner: who, keepBits: true)
            case .symlink:
                try placeSymlink(parent, name, target: s.linkTarget ?? "", owner: who)
            case .other:
                continue
            }
        }
    }

    // MARK: - Single operations, all relative to a parent directory fd

    private func remove(_ path: String) throws(LanesError) {
        guard isSafeRelativePath(path) else { throw refusal(path, "a name that would leave the workspace") }
        let parentFd = workspace.openBeneath(splitPath(path).0.isEmpty ? "." : splitPath(path).0, flags: O_RDONLY | O_DIRECTORY)
        if parentFd < 0 {
            if errno == ENOENT { return }
            throw DirectoryFD.sysError("open directory of \(path)")
        }
        try removeTree(DirectoryFD(fd: parentFd), splitPath(path).1)
    }

    private func removeTree(_ parent: DirectoryFD, _ name: String) throws(LanesError) {
        guard let st = try parent.lstat(name) else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            let fd = openat(parent.fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw DirectoryFD.sysError("open \(name)") }
            let dir = DirectoryFD(fd: fd)
            for child in try dir.names() { try removeTree(dir, child) }
            guard unlinkat(parent.fd, name, AT_REMOVEDIR) == 0 else { throw DirectoryFD.sysError("rmdir \(name)") }
        } else if unlinkat(parent.fd, name, 0) != 0 && errno != ENOENT {
            throw DirectoryFD.sysError("unlink \(name)")
        }
    }

    private func makeDirectory(_ parent: DirectoryFD, _ name: String, mode: UInt32, owner who: (uid_t, gid_t)? = nil) throws(LanesError) {
        let bits = mode_t(mode & 0o1777)
        if let st = try parent.lstat(name), (st.st_mode & S_IFMT) != S_IFDIR { try removeTree(parent, name) }
        if mkdirat(parent.fd, name, bits) != 0 && errno != EEXIST { throw DirectoryFD.sysError("mkdir \(name)") }
        let fd = openat(parent.fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw DirectoryFD.sysError("open \(name)") }
        defer { close(fd) }
        guard fchmod(fd, bits) == 0 else { throw DirectoryFD.sysError("chmod \(name)") }
        if let (u, g) = who ?? owner, fchown(fd, u, g) != 0 { throw DirectoryFD.sysError("chown \(name)") }
    }

    /// Writes a new file from `src` under a temporary name, checks its hash, sets mode and owner,
    /// then renames it over `name` (never writing through an existing file or link).
    private func writeFile(_ parent: DirectoryFD, _ name: String, from src: Int32, expected: String?, mode: UInt32, path: String,
                           owner who: (uid_t, gid_t)? = nil, keepBits: Bool = false) throws(LanesError) {
        var st = stat()
        guard fstat(src, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { throw refusal(path, "not a regular file") }
        let tmp = ".lanes-apply-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let out = openat(parent.fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard out >= 0 else { throw DirectoryFD.sysError("create a file next to \(path)") }
        var ok = false
        defer {
            close(out)
            if !ok { unlinkat(parent.fd, tmp, 0) }
        }
        let hash = try DirectoryFD.hash(fd: src, copyTo: out)
        if let expected, hash != expected { throw refusal(path, "its content changed since the change set was computed") }
        // setuid, setgid (and sticky) never reach the workspace from a step.
        let bits = mode_t(keepBits ? mode & 0o7777 : mode & 0o777)
        guard fchmod(out, bits) == 0 else { throw DirectoryFD.sysError("chmod \(path)") }
        if let (u, g) = who ?? owner, fchown(out, u, g) != 0 { throw DirectoryFD.sysError("chown \(path)") }
        if let existing = try parent.lstat(name), (existing.st_mode & S_IFMT) == S_IFDIR { try removeTree(parent, name) }
        guard renameat(parent.fd, tmp, parent.fd, name) == 0 else { throw DirectoryFD.sysError("rename into \(path)") }
        ok = true
    }

    /// Moves the upper file into place with rename(2) when it can (same filesystem, one link):
    /// no second write of its bytes. The file is checked, hashed, stripped of setuid/setgid and
    /// of overlay xattrs and given its owner while it is still in the private upper directory;
    /// then renamed to a temporary name beside the target (checked to be the same inode) and over
    /// the target. False: not movable here (EXDEV, hard links), the caller copies instead.
    private func moveFile(_ parent: DirectoryFD, _ name: String, from src: Int32, upper: DirectoryFD, entry e: ChangeEntry) throws(LanesError) -> Bool {
        var st = stat(), wsSt = stat()
        guard fstat(src, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { throw refusal(e.path, "not a regular file") }
        guard st.st_nlink == 1, fstat(parent.fd, &wsSt) == 0, wsSt.st_dev == st.st_dev else { return false }
        if rehashMoves {
            let hash = try DirectoryFD.hash(fd: src, copyTo: nil)
            if let expected = e.sha256, hash != expected { throw refusal(e.path, "its content changed since the change set was computed") }
        }
        guard fchmod(src, mode_t((e.mode ?? 0o644) & 0o777)) == 0 else { throw DirectoryFD.sysError("chmod \(e.path)") }
        if let (u, g) = owner, fchown(src, u, g) != 0 { throw DirectoryFD.sysError("chown \(e.path)") }
        for attr in ["user.overlay.origin", "user.overlay.impure", "user.overlay.nlink", "user.overlay.uuid", "user.overlay.protattr"] {
            _ = lane_fremovexattr(src, attr)
        }
        let (upperParent, upperName) = try upper.parent(of: e.path)
        let tmp = ".lanes-apply-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        if renameat(upperParent.fd, upperName, parent.fd, tmp) != 0 {
            if errno == EXDEV { return false }
            throw DirectoryFD.sysError("move \(e.path) into the workspace")
        }
        guard let moved = try parent.lstat(tmp), moved.st_ino == st.st_ino, moved.st_dev == st.st_dev else {
            unlinkat(parent.fd, tmp, 0)
            throw refusal(e.path, "the step's file was swapped while it was applied")
        }
        if let existing = try parent.lstat(name), (existing.st_mode & S_IFMT) == S_IFDIR { try removeTree(parent, name) }
        guard renameat(parent.fd, tmp, parent.fd, name) == 0 else {
            unlinkat(parent.fd, tmp, 0)
            throw DirectoryFD.sysError("rename into \(e.path)")
        }
        return true
    }

    private func placeSymlink(_ parent: DirectoryFD, _ name: String, target: String, owner who: (uid_t, gid_t)? = nil) throws(LanesError) {
        let tmp = ".lanes-apply-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        guard symlinkat(target, parent.fd, tmp) == 0 else { throw DirectoryFD.sysError("symlink \(name)") }
        if let (u, g) = who ?? owner { _ = fchownat(parent.fd, tmp, u, g, AT_SYMLINK_NOFOLLOW) }
        if let existing = try parent.lstat(name), (existing.st_mode & S_IFMT) == S_IFDIR { try removeTree(parent, name) }
        guard renameat(parent.fd, tmp, parent.fd, name) == 0 else {
            unlinkat(parent.fd, tmp, 0)
            throw DirectoryFD.sysError("rename symlink into \(name)")
        }
    }

    private func setMode(_ parent: DirectoryFD, _ name: String, _ mode: UInt32) throws(LanesError) {
        let fd = openat(parent.fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw DirectoryFD.sysError("open \(name)") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw DirectoryFD.sysError("stat \(name)") }
        let t = st.st_mode & S_IFMT
        guard t == S_IFREG || t == S_IFDIR else { throw refusal(name, "not a file or directory") }
        guard fchmod(fd, mode_t(t == S_IFDIR ? mode & 0o1777 : mode & 0o777)) == 0 else { throw DirectoryFD.sysError("chmod \(name)") }
    }

    private func refusal(_ path: String, _ why: String) -> LanesError {
        LanesError(.setupFailed, stage: "changes", "\(path): \(why)")
    }
}
