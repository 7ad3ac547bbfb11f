import Glibc
import LaneModel
import LanePlan

/// Turns a profile and a step into the ordered mount list of ARCHITECTURE.md §3: an empty tmpfs
/// root; read-only, nosuid, nodev binds of /usr and the /bin /lib /lib64 /sbin links; a minimal
/// /etc; fresh /proc; a minimal /dev; a size-limited /tmp; the workspace at its own path.
public enum SandboxLayout {
    /// Host files of /etc the tools need (TLS roots, the loader cache, alternatives, time zone).
    /// Not all of /etc/ssl: /etc/ssl/private holds host keys, readable by a step when `lanes` runs
    /// as root (the sandbox uid then maps to host root, the owner of those files).
    static let etcBinds = ["/etc/ssl/certs", "/etc/ssl/openssl.cnf", "/etc/ca-certificates", "/etc/ld.so.cache", "/etc/ld.so.conf",
                           "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/localtime", "/etc/nsswitch.conf",
                           "/etc/mime.types", "/etc/gitconfig"]
    /// The top-level links (or directories) of a merged-/usr system.
    static let systemLinks = ["/bin", "/lib", "/lib64", "/sbin", "/lib32", "/libx32"]

    /// With `attachTrees`, the workspace and the lane's writable directories are `.attach` steps
    /// (trees `workspaceTrees` lists, opened by `lanes`) instead of binds PID 1 opens itself.
    /// With `overlay` (filesystem.commit = auto or review) the workspace is an overlay whose
    /// writes go to `overlay.upper`, and the lane's writable_direct directories are bound on top.
    /// With both, the overlay's layers are trees too (`.overlayTrees`, after the workspace
    /// trees: see `trees`).
    public static func mounts(profile: Profile, lane: Lane, workspace: String, hidden: [String],
                              uid: UInt32 = 1000, gid: UInt32 = 1000, attachTrees: Bool = false,
                              protected: [MountStep] = [], overlay: (upper: String, work: String)? = nil) -> [MountStep] {
        var steps: [MountStep] = [.bind(source: "/usr", target: "/usr", readOnly: true, optional: false)]
        for link in systemLinks {
            var st = stat()
            guard lstat(link, &st) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFLNK, let dest = readLink(link) {
                steps.append(.symlink(destination: dest, target: link))
            } else {
                steps.append(.bind(source: link, target: link, readOnly: true, optional: true))
            }
        }
        steps.append(.directory(target: "/etc", mode: 0o755))
        let passwd = "root:x:0:0:root:/root:/usr/sbin/nologin\nlane:x:\(uid):\(gid):lane:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        let group = "root:x:0:\nlane:x:\(gid):\nnogroup:x:65534:\n"
        steps.append(.file(target: "/etc/passwd", contents: Array(passwd.utf8), mode: 0o644))
        steps.append(.file(target: "/etc/group", contents: Array(group.utf8), mode: 0o644))
        steps.append(.file(target: "/etc/hosts", contents: Array("127.0.0.1 localhost lane\n::1 localhost\n".utf8), mode: 0o644))
        steps.append(.file(target: "/etc/hostname", contents: Array("lane\n".utf8), mode: 0o644))
        for path in etcBinds {
            // A link is recreated as a link (its target is under the bound /usr); binds never
            // follow symlinks.
            var st = stat()
            guard lstat(path, &st) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFLNK {
                if let dest = readLink(path) { steps.append(.symlink(destination: dest, target: path)) }
            } else {
                steps.append(.bind(source: path, target: path, readOnly: true, optional: true))
            }
        }
        steps.append(.proc(target: "/proc"))
        steps.append(.devices(target: "/dev"))
        var tmpfs = profile.filesystem.tmpfs
        if !tmpfs.contains(where: { $0.path == "/tmp" }) { tmpfs.insert(.init(path: "/tmp", sizeBytes: 256 << 20), at: 0) }
        for t in tmpfs { steps.append(.tmpfs(target: t.path, sizeBytes: t.sizeBytes, mode: 0o1777)) }
        for path in profile.filesystem.readOnly { steps.append(.bind(source: path, target: path, readOnly: true, optional: false)) }
        for path in profile.filesystem.readWrite { steps.append(.bind(source: path, target: path, readOnly: false, optional: false)) }
        let attached = workspaceTrees(profile: profile, lane: lane, workspace: workspace, overlay: overlay != nil)
        if let overlay, attachTrees {
            let layers = overlayLayers(upper: overlay.upper, work: overlay.work)
            steps.append(.overlayTrees(lower: UInt32(attached.count), layers: UInt32(attached.count + 1),
                                       upper: layers.upper, work: layers.work, target: workspace))
        } else if let overlay {
            steps.append(.overlay(lower: workspace, upper: overlay.upper, work: overlay.work, target: workspace))
        }
        for (i, tree) in attached.enumerated() {
            steps.append(attachTrees ? .attach(target: tree.source, index: UInt32(i))
                                     : .bind(source: tree.source, target: tree.source, readOnly: tree.readOnly, optional: false))
        }
        steps += protected
        // Whatever of Lanes' own files lies inside a visible path is covered by an empty,
        // read-only tmpfs: the step can neither read nor change its policy, journal or binaries.
        let visible = [workspace] + profile.filesystem.readOnly + profile.filesystem.readWrite
        for path in hidden where visible.contains(where: { isInside(path, $0) }) {
            steps.append(.tmpfs(target: path, sizeBytes: 4096, mode: 0o000))
            steps.append(.remountReadOnly(target: path))
        }
        return steps
    }

    /// The workspace, then the lane's writable directories, each bound at its own path. Under an
    /// overlay the workspace itself is the overlay: only the writable_direct and writable
    /// directories are bound on top of it.
    public static func workspaceTrees(profile: Profile, lane: Lane, workspace: String, overlay: Bool = false) -> [(source: String, readOnly: Bool)] {
        let own = overlay ? lane.writableDirect.map { (workspace + "/" + $0, false) } : [(workspace, profile.filesystem.workspace == .readOnly)]
        return own + lane.writable.map { (workspace + "/" + $0, false) }
    }

    /// Every tree a root `lanes` opens for the step, in the order the plan's indices use: the
    /// workspace trees, then, under an overlay, its layers: the workspace (read-only lower) and
    /// the directory holding `upper` and `work` (overlayfs wants both on one mount).
    public static func trees(profile: Profile, lane: Lane, workspace: String,
                             overlay: (upper: String, work: String)? = nil) -> [(source: String, readOnly: Bool)] {
        var trees = workspaceTrees(profile: profile, lane: lane, workspace: workspace, overlay: overlay != nil)
        if let overlay {
            trees += [(workspace, true), (overlayLayers(upper: overlay.upper, work: overlay.work).directory, false)]
        }
        return trees
    }

    /// The directory holding an overlay's `upper` and `work` directories, and their names in it.
    /// `ChangeStore` puts both in the step's directory.
    static func overlayLayers(upper: String, work: String) -> (directory: String, upper: String, work: String) {
        let directory = String(upper[..<(upper.lastIndex(of: "/") ?? upper.startIndex)])
        return (directory, String(upper.dropFirst(directory.count + 1)), String(work.dropFirst(directory.count + 1)))
    }

    /// Whether `path` is `dir` or lies below it.
    public static func isInside(_ path: String, _ dir: String) -> Bool {
        path == dir || path.hasPrefix(dir.hasSuffix("/") ? dir : dir + "/")
    }

    static func readLink(_ path: String) -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink(path, &buf, buf.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
