//! RFC 3339 date-times in requests (`2026-11-22T10:00:00Z`, `2026-11-22t11:00:00.25+01:00`: the
//! `date-time` of section 5.6, which JSON Schema's format names), read into the form the store writes
//! times in, UTC to the millisecond, so that comparing them with stored times is the same on every
//! backend. No time library is needed for so little: the calendar arithmetic is Howard Hinnant's.

/// The earliest and latest times the store form is used for here: nothing is stored before 1970,
/// and PostgreSQL reads no year 0 nor years of five digits.
const EARLIEST_MS: i64 = 0;
const LATEST_MS: i64 = 253_402_300_799_999;

/// The time `text` names in the store's form (`2026-11-22T10:00:00.000Z`), or `None` when it is not
/// an RFC 3339 date-time. Digits past the millisecond are cut; a time before 1970 or after 9999
/// becomes the first or last millisecond of that span, before or after every time the store holds.
pub fn store_time(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let number = |at: usize, len: usize| -> Option<i64> {
        let digits = bytes.get(at..at + len)?;
        (digits.iter().all(u8::is_ascii_digit))
            .then(|| (digits.iter()).fold(0, |n, digit| n * 10 + i64::from(digit - b'0')))
    };
    let is = |at: usize, allowed: &[u8]| bytes.get(at).is_some_and(|b| allowed.contains(b));
    if !(is(4, b"-") && is(7, b"-") && is(10, b"Tt") && is(13, b":") && is(16, b":")) {
        return None;
    }
    let (year, month, day) = (number(0, 4)?, number(5, 2)?, number(8, 2)?);
    let (hour, minute, second) = (number(11, 2)?, number(14, 2)?, number(17, 2)?);
    let mut at = 19;
    let mut millis = 0;
    if is(at, b".") {
        let digits = bytes[at + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        let fraction = &bytes[at + 1..at + 1 + digits];
        millis = (0..3)
            .map(|i| fraction.get(i).map_or(0, |digit| i64::from(digit - b'0')))
            .fold(0, |n, digit| n * 10 + digit);
        at += 1 + digits;
    }
    let offset_minutes = if is(at, b"Zz") {
        at += 1;
        0
    } else if is(at, b"+-") && is(at + 3, b":") {
        let (hours, minutes) = (number(at + 1, 2)?, number(at + 4, 2)?);
        if hours > 23 || minutes > 59 {
            return None;
        }
        let sign = if bytes[at] == b'-' { -1 } else { 1 };
        at += 6;
        sign * (hours * 60 + minutes)
    } else {
        return None;
    };
    // A leap second (:60) is a valid RFC 3339 time; it reads as the first millisecond after :59.
    let valid = at == bytes.len()
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour <= 23
        && minute <= 59
        && second <= 60;
    if !valid {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_minutes * 60;
    let ms = (seconds * 1000 + millis).clamp(EARLIEST_MS, LATEST_MS);
    let (year, month, day) = civil_from_days(ms.div_euclid(86_400_000));
    let of_day = ms.rem_euclid(86_400_000);
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3_600_000,
        of_day / 60_000 % 60,
        of_day / 1000 % 60,
        of_day % 1000
    ))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::store_time;

    #[test]
    fn rfc_3339_times_read_as_utc_to_the_millisecond() {
        for (text, stored) in [
            ("2026-11-22T10:00:00Z", "2026-11-22T10:00:00.000Z"),
            ("2026-11-22t11:00:00.25+01:00", "2026-11-22T10:00:00.250Z"),
            ("2026-11-22T10:00:00.123456789z", "2026-11-22T10:00:00.123Z"),
            ("2024-02-29T23:30:00-01:00", "2024-03-01T00:30:00.000Z"),
            ("2016-12-31T23:59:60Z", "2017-01-01T00:00:00.000Z"),
            ("1969-12-31T23:59:59Z", "1970-01-01T00:00:00.000Z"),
            ("9999-12-31T23:59:59-05:00", "9999-12-31T23:59:59.999Z"),
            ("2000-03-01T00:00:00+14:00", "2000-02-29T10:00:00.000Z"),
        ] {
            assert_eq!(store_time(text).as_deref(), Some(stored), "{text}");
        }
    }

    #[test]
    fn what_is_not_an_rfc_3339_date_time_is_refused() {
        for text in [
            "",
            "2026-11-22",
            "2026-11-22T10:00:00",
            "2026-11-22 10:00:00Z",
            "2026-11-22T10:00Z",
            "2026-02-30T10:00:00Z",
            "2023-02-29T10:00:00Z",
            "2026-13-01T10:00:00Z",
            "2026-11-22T24:00:00Z",
            "2026-11-22T10:00:00.Z",
            "2026-11-22T10:00:00+0100",
            "2026-11-22T10:00:00+24:00",
            "2026-11-22T10:00:00Z ",
            "+026-11-22T10:00:00Z",
            "２026-11-22T10:00:00Z",
        ] {
            assert_eq!(store_time(text), None, "{text:?}");
        }
    }
}
