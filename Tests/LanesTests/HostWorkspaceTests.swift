import LaneConfig
import Testing

/// Workspaces that would expose the host are refused (issue 11: `--workspace /` was accepted).
@Suite("host workspace")
struct HostWorkspaceTests {
    let context = HostWorkspace.Context(homes: ["/root", "/home/alice", "/usr/sbin", "/nonexistent"],
                                        stateDirectory: "/var/lib/lanes", configDirectories: ["/etc/lanes", "/home/alice/.config/lanes"])

    @Test("the host's own trees, shared roots, homes and their secrets are refused", arguments: [
        "/", "/etc", "/etc/ssh", "/usr", "/usr/lib", "/root", "/home", "/home/alice", "/home/alice/.ssh",
        "/home/alice/.config", "/home/alice/.local/state", "/var", "/var/lib", "/var/lib/lanes", "/var/log/x",
        "/tmp", "/var/tmp", "/proc/1", "/sys", "/dev", "/boot", "/run", "/srv", "/opt", "/usr/sbin", "/etc/lanes/Lanes",
    ])
    func refused(_ path: String) {
        #expect(HostWorkspace.exposure(path, context: context) != nil, "\(path) accepted")
    }

    @Test("project directories are fine", arguments: [
        "/home/alice/src/app", "/root/work", "/tmp/build", "/var/tmp/job-1", "/srv/project", "/opt/app/src", "/work/repo",
        "/home/alice/.configs-not-really",
    ])
    func accepted(_ path: String) {
        #expect(HostWorkspace.exposure(path, context: context) == nil, "\(path): \(HostWorkspace.exposure(path, context: context) ?? "")")
    }

    @Test("a custom state directory: the workspace may not be inside it")
    func stateDirectory() {
        let c = HostWorkspace.Context(homes: [], stateDirectory: "/data/lanes-state", configDirectories: [])
        #expect(HostWorkspace.exposure("/data/lanes-state", context: c) != nil)
        #expect(HostWorkspace.exposure("/data/lanes-state/x", context: c) != nil)
        #expect(HostWorkspace.exposure("/data", context: c) == nil)  // hidden by the step's tmpfs instead
        #expect(HostWorkspace.exposure("/data/", context: c) == nil)
    }
}
