use super::*;

#[test]
fn urls_are_read_with_their_options_and_the_password_hidden() {
    let fleet =
        FleetSettings::parse("redis://app:s3cret@cache.internal:6380/2?interval=0.5&fallback_share=0.25&ssl_cert_reqs=none#checkout")
            .unwrap();
    assert_eq!(fleet.name, "checkout");
    assert_eq!((fleet.interval, fleet.fallback_share), (0.5, 0.25));
    assert_eq!(fleet.connect_url(), "redis://app:s3cret@cache.internal:6380/2?ssl_cert_reqs=none");
    assert!(!fleet.shown().contains("s3cret") && fleet.shown().contains("app:***@"), "{}", fleet.shown());
    assert!(!format!("{fleet:?}").contains("s3cret"));
    assert_eq!(fleet.key("budget"), "tracesieve:checkout:budget");
    let plain = FleetSettings::parse("rediss://localhost").unwrap();
    // An '@' in an option is fine where the URL's own userinfo came first.
    let option = FleetSettings::parse("redis://app:pw@host/0?username=me@corp").unwrap();
    assert!(option.connect_url().ends_with("username=me@corp") || option.connect_url().ends_with("username=me%40corp"));
    assert!(FleetSettings::parse("redis://app:a%2Fb@host/0").is_ok());
    assert_eq!((plain.name.as_str(), plain.interval, plain.fallback_share), ("default", 1.0, 0.1));
}

#[test]
fn bad_urls_are_refused_naming_the_part_and_never_the_password() {
    for (url, expected) in [
        ("redis://u:pw9@host/0?interval=100", "interval=100"),
        ("redis://u:pw9@host/0?fallback_share=0", "fallback_share=0"),
        ("redis://u:pw9@host/x", "database number"),
        ("redis://u:pw9@host/0#no spaces", "fleet name"),
        ("redis://u:pw9@:6379/0", "cannot be read"),
        // A password with an unencoded '/', '?' or '#' (base64 passwords hold '/'):
        // the authority ends inside it and its rest lands in the path, query or fragment.
        ("redis://u:9/pw9@host/0", "percent-encoded"),
        ("redis://u:9?x=pw9@host/0", "percent-encoded"),
        ("redis://u:9#pw9@host", "percent-encoded"),
        ("redis://h@u:9/pw9@host/0", "percent-encoded"),
    ] {
        let error = FleetSettings::parse(url).unwrap_err();
        assert_eq!(error.field, "store");
        assert!(error.message.contains(expected), "{url}: {error}");
        assert!(!error.message.contains("pw9"), "{error}");
    }
}

#[test]
fn replies_must_be_ok_and_numbers() {
    let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let link = Link::new(1.0, 0.1);
    assert_eq!(parse_reply(&strings(&["ok", "0", "1", "2.5"]), 2, &link).unwrap(), vec![1.0, 2.5]);
    assert!(parse_reply(&strings(&["ok", "0", "1"]), 2, &link).unwrap_err().contains("expected 3"));
    assert!(parse_reply(&strings(&["ok", "0", "nan", "1"]), 2, &link).is_err());
    assert!(parse_reply(&strings(&["conflict", "budget=5"]), 2, &link).unwrap_err().contains("budget=5"));
    assert!(parse_reply(&strings(&["OK"]), 0, &link).is_err());
    assert_eq!(link.status(&Lease::default(), 0.0).repairs, 0);
    parse_reply(&strings(&["ok", "3", "1", "2"]), 2, &link).unwrap();
    assert_eq!(link.status(&Lease::default(), 0.0).repairs, 3, "values repaired in Redis are counted");
    assert_eq!(count(3.0, 5.0, "x"), Ok(3));
    assert!(count(6.0, 5.0, "x").is_err() && count(-1.0, 5.0, "x").is_err() && count(1.5, 5.0, "x").is_err());
}

#[test]
fn a_lease_is_spent_once_and_only_while_valid() {
    let lease = Lease::default();
    assert!(!lease.take(0.0), "nothing leased");
    lease.extend(3, 10.0);
    assert_eq!((0..5).filter(|_| lease.take(1.0)).count(), 3);
    lease.give_back();
    assert!(!lease.take(10.0), "expired");
    assert!(lease.take(9.9));
    lease.extend(1, 20.0);
    lease.clear();
    assert!(!lease.take(11.0));
}

#[test]
fn threads_never_spend_more_than_the_lease() {
    let lease = std::sync::Arc::new(Lease::default());
    lease.extend(10_000, 1.0);
    let taken: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8).map(|_| scope.spawn(|| (0..5_000).filter(|_| lease.take(0.5)).count())).collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    assert_eq!(taken, 10_000);
}

#[test]
fn a_failed_step_spends_the_lease_then_the_fallback_share() {
    let link = Link::new(1.0, 0.25);
    let lease = Lease::default();
    link.begin(0.0);
    lease.extend(5, link.lease_deadline());
    assert_eq!(link.lease_deadline(), 2.5);
    assert!(!link.failed(&lease, 1.0, 100.0, 40.0, "down".into()), "the lease is still valid");
    assert_eq!(lease.left(), 5);
    assert!(link.failed(&lease, 3.0, 100.0, 40.0, "down".into()), "expired: degraded");
    assert_eq!(lease.left(), 5 + 10, "a quarter of the burst at once");
    assert!(link.failed(&lease, 5.0, 100.0, 40.0, "down".into()));
    assert_eq!(lease.left(), 15 + 50, "then a quarter of 100/s for 2 s");
    assert!(lease.valid(5.0));
    let status = link.status(&lease, 6.0);
    assert!(status.degraded && status.degraded_seconds == 3.0 && status.failures == 3);
    link.succeeded(7.0, 0.5, 2, 42.0);
    let status = link.status(&lease, 8.0);
    assert!(!status.degraded && status.degraded_seconds == 4.0 && status.share == 0.5 && status.problem.is_none());
    assert_eq!(link.epoch(), 42.0);
}

#[test]
fn spacing_follows_the_calls_and_sizes_the_leases() {
    let link = Link::new(1.0, 0.1);
    assert_eq!(link.begin(100.0), 1.0);
    assert_eq!(link.begin(160.0), 60.0, "a simulation stepping once a minute");
    assert_eq!(link.lease_deadline(), 160.0 + 150.0);
    assert_eq!(link.server_lease_ms(), 180_000);
    let id = link.id();
    link.after_fork(&Lease::default());
    assert_ne!(link.id(), id, "a forked child is another member");
}
