/// Short human durations for tables (`lanes pending`: AGE and EXPIRES): seconds below two
/// minutes, minutes below two hours, hours above; rounded to the nearest unit, so an 8 h review
/// timeout just requested shows "8h" (truncating showed "7h").
public enum DurationText {
    public static func short(_ seconds: Double) -> String {
        let s = max(0, seconds.isFinite ? seconds : 0)
        if s.rounded() < 120 { return "\(Int(s.rounded()))s" }
        if (s / 60).rounded() < 120 { return "\(Int((s / 60).rounded()))m" }
        return "\(Int((s / 3600).rounded()))h"
    }
}
