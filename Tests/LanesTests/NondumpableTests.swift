import CLaneSys
import Glibc
import LanePlan
import Testing
@testable import lane_init

/// Issue 9 defect: lane-init ignored a failed PR_SET_DUMPABLE yet reported `nondumpable_init`.
/// The real prctl cannot be made to fail from outside, and lane-init reads nothing a step could
/// steer (empty environment, plan from the supervisor), so the failure is injected through the
/// `prctl` parameter of `makeNondumpable`, the function lane-init's main calls first.
@Suite("lane-init refuses when it cannot become non-dumpable")
struct NondumpableTests {
    @Test("a failed PR_SET_DUMPABLE refuses the step at stage 'nondumpable init'")
    func setFails() {
        let failing: Prctl = { option, _, _, _, _ in
            if option == LANE_PR_SET_DUMPABLE { errno = EPERM; return -1 }
            return 0
        }
        do {
            try makeNondumpable(prctl: failing)
            Issue.record("a failed PR_SET_DUMPABLE was ignored")
        } catch {
            #expect(error.stage == SetupStage(LANE_STAGE_NONDUMPABLE))
            #expect(error.errno == EPERM)
            #expect(error.report.kind == .setupFailed)
        }
    }

    @Test("a flag that does not stick (PR_GET_DUMPABLE still 1) refuses the step too")
    func flagDoesNotStick() {
        let ignoring: Prctl = { option, _, _, _, _ in option == LANE_PR_GET_DUMPABLE ? 1 : 0 }
        #expect(throws: SetupFailure.self) { try makeNondumpable(prctl: ignoring) }
    }

    @Test("when the kernel does it, nothing is refused (the seam is not always failing)")
    func succeeds() throws {
        var dumpable: Int32 = 1
        let kernel: Prctl = { option, a2, _, _, _ in
            if option == LANE_PR_SET_DUMPABLE { dumpable = Int32(a2); return 0 }
            return dumpable
        }
        try makeNondumpable(prctl: kernel)
        #expect(dumpable == 0)
    }
}
