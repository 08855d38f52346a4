//! The 17-digit ILP timestamp `YYYYMMDDHHmmSSfff` (UTC, milliseconds, no separators).

use thiserror::Error;

/// Digits in an ILP timestamp.
pub const TIMESTAMP_SIZE: usize = 17;

const MS_PER_DAY: u64 = 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TimestampError {
    #[error("timestamp contains a character that is not a digit")]
    NotDigits,
    #[error("timestamp field out of range")]
    OutOfRange,
    #[error("timestamp is before 1970-01-01")]
    BeforeUnixEpoch,
    #[error("timestamp is after 9999-12-31")]
    AfterYear9999,
}

/// An instant as milliseconds since the Unix epoch, the only unit Riptide computes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    unix_ms: u64,
}

impl Timestamp {
    /// 9999-12-31T23:59:59.999Z, the largest instant the fixed form can carry.
    pub const MAX: Timestamp = Timestamp {
        unix_ms: 253_402_300_799_999,
    };

    pub fn from_unix_ms(unix_ms: u64) -> Result<Timestamp, TimestampError> {
        if unix_ms > Self::MAX.unix_ms {
            return Err(TimestampError::AfterYear9999);
        }
        Ok(Timestamp { unix_ms })
    }

    /// Like [`Timestamp::from_unix_ms`], clamped to [`Timestamp::MAX`].
    pub fn from_unix_ms_saturating(unix_ms: u64) -> Timestamp {
        Timestamp {
            unix_ms: unix_ms.min(Self::MAX.unix_ms),
        }
    }

    pub fn unix_ms(self) -> u64 {
        self.unix_ms
    }

    /// Parses the fixed 17-digit form, strictly: month 1-12, day within the month,
    /// hour 0-23, minute 0-59, second 0-59 (leap seconds are smeared, never 60).
    pub fn parse(digits: &[u8; TIMESTAMP_SIZE]) -> Result<Timestamp, TimestampError> {
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(TimestampError::NotDigits);
        }
        let field = |start: usize, end: usize| {
            digits[start..end]
                .iter()
                .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'))
        };
        let (year, month, day) = (field(0, 4), field(4, 6), field(6, 8));
        let (hour, minute, second, millis) =
            (field(8, 10), field(10, 12), field(12, 14), field(14, 17));
        if year < 1970 {
            return Err(TimestampError::BeforeUnixEpoch);
        }
        let month_ok = (1..=12).contains(&month);
        if !month_ok || day == 0 || day > days_in_month(year, month) {
            return Err(TimestampError::OutOfRange);
        }
        if hour > 23 || minute > 59 || second > 59 {
            return Err(TimestampError::OutOfRange);
        }
        let days = days_from_civil(year, month, day);
        let unix_ms = days * MS_PER_DAY + ((hour * 60 + minute) * 60 + second) * 1000 + millis;
        Ok(Timestamp { unix_ms })
    }

    /// The fixed 17-digit form.
    pub fn to_digits(self) -> [u8; TIMESTAMP_SIZE] {
        debug_assert!(self.unix_ms <= Self::MAX.unix_ms);
        let days = self.unix_ms / MS_PER_DAY;
        let ms_of_day = self.unix_ms % MS_PER_DAY;
        let (year, month, day) = civil_from_days(days);
        let mut out = [b'0'; TIMESTAMP_SIZE];
        write_decimal(&mut out[0..4], year);
        write_decimal(&mut out[4..6], month);
        write_decimal(&mut out[6..8], day);
        write_decimal(&mut out[8..10], ms_of_day / 3_600_000);
        write_decimal(&mut out[10..12], ms_of_day / 60_000 % 60);
        write_decimal(&mut out[12..14], ms_of_day / 1000 % 60);
        write_decimal(&mut out[14..17], ms_of_day % 1000);
        out
    }

    /// RFC 3339 form with milliseconds, for humans and JSON.
    pub fn to_rfc3339(self) -> String {
        let d = self.to_digits();
        let s = |r: std::ops::Range<usize>| std::str::from_utf8(&d[r]).unwrap_or("?").to_owned();
        format!(
            "{}-{}-{}T{}:{}:{}.{}Z",
            s(0..4),
            s(4..6),
            s(6..8),
            s(8..10),
            s(10..12),
            s(12..14),
            s(14..17)
        )
    }
}

fn write_decimal(out: &mut [u8], mut value: u64) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
    debug_assert_eq!(value, 0, "field wider than its slot");
}

fn is_leap_year(year: u64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (year >= 1970), using the
/// era-based method: shifting the year to start in March puts the leap day last.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let shifted_year = if month <= 2 { year - 1 } else { year };
    let era = shifted_year / 400;
    let year_of_era = shifted_year % 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719_468 is the day number of 1970-01-01 counted from 0000-03-01.
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Timestamp, TimestampError> {
        let digits: [u8; TIMESTAMP_SIZE] = text.as_bytes().try_into().expect("17 chars");
        Timestamp::parse(&digits)
    }

    #[test]
    fn rfc_examples_round_trip() {
        for text in [
            "20171224161432279",
            "20171225000000000",
            "99991224161432279",
        ] {
            let ts = parse(text).expect("valid");
            assert_eq!(&ts.to_digits(), text.as_bytes());
        }
        assert_eq!(
            parse("20171224161432279").map(Timestamp::unix_ms),
            Ok(1_514_132_072_279)
        );
        assert_eq!(parse("19700101000000000").map(Timestamp::unix_ms), Ok(0));
        assert_eq!(parse("99991231235959999"), Ok(Timestamp::MAX));
    }

    #[test]
    fn invalid_fields_are_rejected() {
        assert_eq!(parse("20171224241432279"), Err(TimestampError::OutOfRange));
        assert_eq!(parse("20171224166032279"), Err(TimestampError::OutOfRange));
        assert_eq!(parse("20171224161460279"), Err(TimestampError::OutOfRange));
        assert_eq!(parse("20171324161432279"), Err(TimestampError::OutOfRange));
        assert_eq!(parse("20170229000000000"), Err(TimestampError::OutOfRange));
        assert!(parse("20160229000000000").is_ok());
        assert_eq!(parse("20171200161432279"), Err(TimestampError::OutOfRange));
        assert_eq!(parse("2017122416143227Z"), Err(TimestampError::NotDigits));
        assert_eq!(
            parse("19691231235959999"),
            Err(TimestampError::BeforeUnixEpoch)
        );
    }

    #[test]
    fn rfc3339_rendering() {
        let ts = parse("20171223012140549").expect("valid");
        assert_eq!(ts.to_rfc3339(), "2017-12-23T01:21:40.549Z");
    }

    proptest::proptest! {
        #[test]
        fn unix_ms_round_trips(unix_ms in 0u64..=Timestamp::MAX.unix_ms) {
            let ts = Timestamp::from_unix_ms(unix_ms).expect("in range");
            proptest::prop_assert_eq!(Timestamp::parse(&ts.to_digits()), Ok(ts));
        }

        #[test]
        fn parse_never_panics(digits: [u8; TIMESTAMP_SIZE]) {
            let _ = Timestamp::parse(&digits);
        }
    }
}
