import CLaneSys
import Glibc
import LanePlan

/// Proxy mode (issue 12): a child of PID 1 that listens on 127.0.0.1:`plan.egressPort` inside the
/// step's network namespace and hands every accepted connection, as an fd, to the supervisor's
/// egress proxy over the unix socket at fd 6 (`SpawnPlan.egressChannelFd`). It decides nothing: the supervisor checks every
/// request. It runs as the namespace's uid 0 and the tool as another uid, so the tool can neither
/// signal nor trace it; it dies with the pid namespace (`InitLoop.killRemaining`).
enum EgressRelay {
    /// Binds the listener (before the tool exists, so the tool cannot take the port) and forks
    /// the relay. PID 1 keeps neither fd.
    static func start(_ plan: SpawnPlan) throws(SetupFailure) {
        guard plan.egressPort != 0 else { return }
        let channel = SpawnPlan.egressChannelFd
        let listener = try check(lane_egress_listen(plan.egressPort), LANE_STAGE_EGRESS, "listener on 127.0.0.1:\(plan.egressPort)")
        let pid = fork()
        if pid < 0 { throw SetupFailure(LANE_STAGE_EGRESS, "fork relay") }
        if pid == 0 {
            // Only the listener and the channel stay open: the stdio pipes and the status pipe
            // must reach EOF when PID 1 and the tool are done.
            // (The plan's fd 3 is closed already, so the listener may have taken its number.)
            for fd: Int32 in [0, 1, 2, 3, 4, 5] where fd != listener && fd != channel { close(fd) }
            _ = lane_prctl(LANE_PR_SET_PDEATHSIG, UInt(SIGKILL), 0, 0, 0)
            relay(listener: listener, channel: channel)
        }
        close(listener)
        close(channel)
    }

    /// accept → send the fd → close our copy, until the supervisor's end goes away.
    private static func relay(listener: Int32, channel: Int32) -> Never {
        while true {
            let conn = lane_egress_accept(listener)
            if conn < 0 {
                // Transient accept errors (a reset before accept, fd pressure) skip one client.
                if errno == ECONNABORTED || errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM { continue }
                _exit(1)
            }
            let sent = lane_egress_send_fd(channel, conn)
            close(conn)
            if sent != 0 { _exit(0) }  // the supervisor stopped its proxy: the step is ending
        }
    }
}
