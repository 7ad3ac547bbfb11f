import Foundation
@testable import LaneMCP
import Testing

/// `lanes mcp --max-steps`' slots (`StepSlots`), without a server: a call that starts waiting
/// just as the last step gives its slot back must get that slot, not wait for a release that
/// may never come.
@Suite("lanes mcp step slots")
struct StepSlotsTests {
    @Test("a slot given back while a call is deciding to wait is taken, not waited for")
    func releaseRacesAcquire() async throws {
        // One slot, held; a second call starts to wait while the holder gives it back, thousands
        // of times with the two racing. Every round the second call must get the slot.
        let rounds = 20_000
        var stuck = 0
        for _ in 0..<rounds {
            let slots = StepSlots(limit: 1)
            #expect(slots.tryAcquire())
            let waiter = Task { try await slots.acquire() }
            Thread { slots.release() }.start()
            // A waiter that missed the released slot would wait for ever: after 2 s the slots are
            // closed, which ends its wait with a refusal.
            let watchdog = Task {
                try await Task.sleep(for: .seconds(2))
                slots.close()
            }
            let got = (try? await waiter.value) != nil
            watchdog.cancel()
            if !got { stuck += 1 }
            if stuck > 0 { break }
        }
        #expect(stuck == 0, "a call waited for a slot that was free (in \(rounds) rounds)")
    }
}
