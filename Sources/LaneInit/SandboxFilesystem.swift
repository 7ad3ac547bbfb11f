import CLaneSys
import Glibc
import LanePlan
import LaneSyscall

/// Builds the sandbox's root in kernel order:
/// 1. every mount private, so nothing propagates back to the host;
/// 2. a scratch tmpfs on /tmp becomes the root for a moment, with the host root at /oldroot,
///    so that bind sources are taken from /oldroot even when they live under the host's /tmp;
/// 3. the new root (a tmpfs at /newroot) gets the plan's mounts in order;
/// 4. pivot into /newroot and detach everything else, then make the root tmpfs read-only.
struct SandboxFilesystem {
    let plan: SpawnPlan
    let base = "/tmp"
    let newRoot = "/newroot"
    let oldRoot = "/oldroot"
    /// The mount trees `lanes` sent on fd 5, by index (see `MountStep.attach`).
    var trees: [Int32] = []

    func build() throws(SetupFailure) {
        try check(mount(nil, "/", nil, UInt(MS_REC | MS_PRIVATE), nil), LANE_STAGE_MOUNT_PRIVATE)
        try check(mount("tmpfs", base, "tmpfs", UInt(MS_NOSUID | MS_NODEV), "mode=0755,size=64k"), LANE_STAGE_SCRATCH_ROOT, "mount tmpfs")
        try check(chdir(base), LANE_STAGE_SCRATCH_ROOT, "chdir")
        try check(mkdir("newroot", 0o755), LANE_STAGE_SCRATCH_ROOT, "mkdir newroot")
        try check(mkdir("oldroot", 0o755), LANE_STAGE_SCRATCH_ROOT, "mkdir oldroot")
        try check(lane_pivot_root(base, base + "/oldroot"), LANE_STAGE_SCRATCH_ROOT, "pivot_root")
        try check(chdir("/"), LANE_STAGE_SCRATCH_ROOT, "chdir /")
        try check(mount("tmpfs", newRoot, "tmpfs", UInt(MS_NOSUID | MS_NODEV), "mode=0755,size=1m"), LANE_STAGE_ROOT_TMPFS)
        for step in plan.mounts { try apply(step) }
        try check(umount2(oldRoot, Int32(MNT_DETACH)), LANE_STAGE_PIVOT_ROOT, "detach host root")
        try check(chdir(newRoot), LANE_STAGE_PIVOT_ROOT, "chdir new root")
        try check(lane_pivot_root(".", "."), LANE_STAGE_PIVOT_ROOT, "pivot_root")
        try check(umount2(".", Int32(MNT_DETACH)), LANE_STAGE_PIVOT_ROOT, "detach scratch root")
        try check(chdir("/"), LANE_STAGE_PIVOT_ROOT, "chdir /")
        try check(mount(nil, "/", nil, UInt(MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV), nil), LANE_STAGE_REMOUNT_READONLY, "/")
    }

    private func inRoot(_ path: String) -> String { newRoot + path }

    private func apply(_ step: MountStep) throws(SetupFailure) {
        switch step {
        case let .tmpfs(target, size, mode):
            try makeDirectory(inRoot(target))
            let options = "mode=" + String(mode, radix: 8) + (size > 0 ? ",size=\(size)" : "")
            try check(mount("tmpfs", inRoot(target), "tmpfs", UInt(MS_NOSUID | MS_NODEV), options), LANE_STAGE_MOUNT_TMPFS, target)
        case let .bind(source, target, readOnly, optional):
            try bind(oldRoot + source, to: inRoot(target), readOnly: readOnly, optional: optional, name: target)
        case let .proc(target):
            try makeDirectory(inRoot(target))
            try check(mount("proc", inRoot(target), "proc", UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC), nil), LANE_STAGE_MOUNT_PROC, target)
            // The parts of procfs that change the kernel stay read-only.
            for sub in ["sys", "sysrq-trigger", "irq", "bus", "fs", "latency_stats", "timer_list"] {
                let path = inRoot(target) + "/" + sub
                // Absent on this kernel: nothing to protect. Any other failure to look refuses.
                if access(path, F_OK) != 0 {
                    if errno == ENOENT { continue }
                    throw SetupFailure(LANE_STAGE_PROTECT_PROC, "\(target)/\(sub)")
                }
                var stage: Int32 = 0
                if lane_bind(path, path, 1, &stage) != 0 { throw SetupFailure(LANE_STAGE_PROTECT_PROC, "\(target)/\(sub)") }
            }
        case let .devices(target):
            try makeDevices(inRoot(target), name: target)
        case let .symlink(destination, target):
            try makeDirectory(parent(inRoot(target)))
            try check(Glibc.symlink(destination, inRoot(target)), LANE_STAGE_SYMLINK, target)
        case let .file(target, contents, mode):
            try makeDirectory(parent(inRoot(target)))
            let fd: OwnedDescriptor
            do { fd = try FileDescriptor.openOwned(inRoot(target), O_WRONLY | O_CREAT | O_EXCL, mode: mode_t(mode)) } catch {
                throw SetupFailure(LANE_STAGE_WRITE_FILE, target, error.rawValue)
            }
            do { try fd.descriptor.writeAll(contents) } catch { throw SetupFailure(LANE_STAGE_WRITE_FILE, target, error.rawValue) }
        case let .directory(target, mode):
            try makeDirectory(inRoot(target), mode: mode_t(mode))
        case let .attach(target, index):
            guard Int(index) < trees.count else { throw SetupFailure(LANE_STAGE_ATTACH, "\(target): no tree \(index)", EINVAL) }
            try makeDirectory(inRoot(target))
            try check(lane_attach_tree(trees[Int(index)], inRoot(target)), LANE_STAGE_ATTACH, target)
        case let .rebind(target, readOnly):
            var stage: Int32 = 0
            if lane_bind(inRoot(target), inRoot(target), readOnly ? 1 : 0, &stage) != 0 {
                throw SetupFailure(LANE_STAGE_PROTECT_PATHS, (readOnly ? "protect " : "pin ") + target)
            }
        case let .overlay(lower, upper, work, target):
            try makeDirectory(inRoot(target))
            // userxattr: an overlay mounted in a user namespace keeps its whiteout and opaque
            // markers in user.overlay.*. redirect_dir=nofollow and metacopy=off: no renamed-directory
            // redirects and no metadata-only copy-ups, so the upper directory holds whole files
            // the change-set scanner can read as they are.
            try mountOverlay(lower: oldRoot + lower, upper: oldRoot + upper, work: oldRoot + work, target: target)
        case let .overlayTrees(lower, layers, upper, work, target):
            try makeDirectory(inRoot(target))
            try overlayFromTrees(lower: lower, layers: layers, upper: upper, work: work, target: target)
        case let .remountReadOnly(target):
            try check(mount(nil, inRoot(target), nil, UInt(MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV), nil), LANE_STAGE_REMOUNT_READONLY, target)
        }
    }

    /// Paths were checked by the supervisor to hold no `,`, `:` or backslash (option separators).
    private func mountOverlay(lower: String, upper: String, work: String, target: String) throws(SetupFailure) {
        let options = "lowerdir=\(lower),upperdir=\(upper),workdir=\(work),userxattr,redirect_dir=nofollow,metacopy=off,index=off"
        try check(mount("overlay", inRoot(target), "overlay", UInt(MS_NOSUID | MS_NODEV), options), LANE_STAGE_OVERLAY, target)
    }

    /// Ordering: the layer trees are attached under a private directory of the new root (the
    /// overlay takes its layers by path, in this mount namespace), the overlay is mounted, and
    /// the layer mounts are detached and their directory removed at once (the overlay keeps
    /// its own references to them), so the tool never sees the workspace below or the state
    /// directory's upper and work directories. The directory goes before the root tmpfs is made
    /// read-only.
    private func overlayFromTrees(lower: UInt32, layers: UInt32, upper: String, work: String, target: String) throws(SetupFailure) {
        guard Int(lower) < trees.count, Int(layers) < trees.count else {
            throw SetupFailure(LANE_STAGE_OVERLAY_LAYERS, "\(target): no tree \(max(lower, layers))", EINVAL)
        }
        let dir = inRoot("/.lane-overlay"), lowerPath = dir + "/lower", layersPath = dir + "/layers"
        for path in [dir, lowerPath, layersPath] {
            try check(mkdir(path, 0o700), LANE_STAGE_OVERLAY_LAYERS, "mkdir " + path.dropFirst(newRoot.count))
        }
        try check(lane_attach_tree(trees[Int(lower)], lowerPath), LANE_STAGE_OVERLAY_LAYERS, "\(target) (lower)")
        try check(lane_attach_tree(trees[Int(layers)], layersPath), LANE_STAGE_OVERLAY_LAYERS, "\(target) (upper and work)")
        try mountOverlay(lower: lowerPath, upper: layersPath + "/" + upper, work: layersPath + "/" + work, target: target)
        for path in [lowerPath, layersPath] {
            try check(umount2(path, Int32(MNT_DETACH)), LANE_STAGE_OVERLAY_DETACH, String(path.dropFirst(newRoot.count)))
        }
        for path in [lowerPath, layersPath, dir] {
            try check(rmdir(path), LANE_STAGE_OVERLAY_DETACH, "rmdir " + path.dropFirst(newRoot.count))
        }
    }

    private func bind(_ source: String, to target: String, readOnly: Bool, optional: Bool, name: String) throws(SetupFailure) {
        var st = stat()
        if lstat(source, &st) != 0 {
            if optional && errno == ENOENT { return }
            throw SetupFailure(LANE_STAGE_BIND, name)
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            try makeDirectory(target)
        } else {
            try makeDirectory(parent(target))
            do { _ = try FileDescriptor.openOwned(target, O_WRONLY | O_CREAT, mode: 0o644) } catch where error != .fileExists {
                throw SetupFailure(LANE_STAGE_BIND, name + " (mount point)", error.rawValue)
            } catch {}
        }
        var stage: Int32 = 0
        if lane_bind(source, target, readOnly ? 1 : 0, &stage) != 0 {
            // lane_bind names its own stage (LANE_STAGE_BIND_OPEN … _MOVE).
            throw SetupFailure(lane_stage(UInt32(bitPattern: stage)), name)
        }
    }

    private func makeDevices(_ dev: String, name: String) throws(SetupFailure) {
        try makeDirectory(dev)
        try check(mount("tmpfs", dev, "tmpfs", UInt(MS_NOSUID | MS_NOEXEC), "mode=0755,size=64k"), LANE_STAGE_MOUNT_DEV, name)
        for node in ["null", "zero", "full", "random", "urandom", "tty"] {
            let path = dev + "/" + node
            do { _ = try FileDescriptor.openOwned(path, O_WRONLY | O_CREAT, mode: 0o666) } catch {
                throw SetupFailure(LANE_STAGE_MOUNT_DEV, "\(name)/\(node)", error.rawValue)
            }
            // Device nodes cannot be created in a user namespace; bind the host's.
            try check(mount(oldRoot + "/dev/" + node, path, nil, UInt(MS_BIND), nil), LANE_STAGE_MOUNT_DEV, "\(name)/\(node)")
            // Read-only: the node stays usable, but its inode is the host's, and when `lanes`
            // runs as root the step owns it (chmod/utimes on the host's /dev/null otherwise).
            try check(mount(nil, path, nil, UInt(MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC), nil),
                      LANE_STAGE_MOUNT_DEV, "\(name)/\(node) read-only")
        }
        try makeDirectory(dev + "/pts")
        try check(mount("devpts", dev + "/pts", "devpts", UInt(MS_NOSUID | MS_NOEXEC), "newinstance,ptmxmode=0666,mode=620"), LANE_STAGE_MOUNT_DEV, "\(name)/pts")
        try makeDirectory(dev + "/shm")
        try check(mount("tmpfs", dev + "/shm", "tmpfs", UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC), "mode=1777,size=64m"), LANE_STAGE_MOUNT_DEV, "\(name)/shm")
        let links = [("pts/ptmx", "ptmx"), ("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"),
                     ("/proc/self/fd/1", "stdout"), ("/proc/self/fd/2", "stderr")]
        for (destination, link) in links {
            try check(Glibc.symlink(destination, dev + "/" + link), LANE_STAGE_MOUNT_DEV, "\(name)/\(link)")
        }
        // No new entries in /dev from inside.
        try check(mount(nil, dev, nil, UInt(MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC), nil), LANE_STAGE_MOUNT_DEV, "\(name) read-only")
    }

    private func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    /// mkdir -p inside the new root (which only this process can see, so no symlink races).
    private func makeDirectory(_ path: String, mode: mode_t = 0o755) throws(SetupFailure) {
        var st = stat()
        if stat(path, &st) == 0 { return }
        let up = parent(path)
        if up != path { try makeDirectory(up) }
        if mkdir(path, mode) != 0 && errno != EEXIST { throw SetupFailure(LANE_STAGE_MKDIR, String(path.dropFirst(newRoot.count))) }
    }
}
