import Glibc

/// The one monotonic clock of Lanes (CLOCK_MONOTONIC): deadlines, grace periods, wall times of
/// steps and cgroup teardown all read it, never the wall clock.
public enum MonotonicClock {
    /// Nanoseconds since an arbitrary fixed point.
    public static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Seconds since an arbitrary fixed point.
    public static func seconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Sleeps `seconds`, resuming after a signal with the time left.
    public static func sleep(_ seconds: Double) {
        var ts = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        var left = timespec()
        _ = retryOnInterrupt {
            let r = nanosleep(&ts, &left)
            ts = left  // interrupted: sleep what is left
            return r
        }
    }
}
