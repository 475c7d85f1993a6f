//! What `refinery run` follows and when it fetches: at most every fetch interval, at once when
//! asked (a webhook, the sync API), many asks being one fetch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use refinery_git::{Follow, Follower, GitError, TagPattern, TestRepo};

const HOUR: Duration = Duration::from_secs(3600);

fn remote_and_clone() -> (TestRepo, TestRepo, String) {
    let remote = TestRepo::bare();
    remote.write("refinery.yaml", "version: 1\n");
    let c1 = remote.commit("one");
    let clone = TestRepo::clone_of(&remote);
    (remote, clone, c1)
}

fn push(remote: &TestRepo, n: u32) -> String {
    remote.write("refinery.yaml", format!("version: {n}\n"));
    remote.commit(&format!("commit {n}"))
}

#[test]
fn follower_branch_fetches_first_then_only_every_interval() {
    let (remote, clone, c1) = remote_and_clone();
    let f = Follower::new(clone.source(), Follow::Branch("main".into()), HOUR);
    let t0 = Instant::now();
    let first = f.tip(t0).expect("tip");
    assert_eq!((first.commit.as_str(), first.fetched), (c1.as_str(), true));
    assert_eq!(first.source, "refs/remotes/origin/main");

    let c2 = push(&remote, 2);
    // Not due: what the last fetch brought, without asking the remote.
    let later = f.tip(t0 + Duration::from_secs(59 * 60)).expect("tip");
    assert_eq!((later.commit.as_str(), later.fetched), (c1.as_str(), false));
    assert_eq!(f.fetches(), 1);
    // An hour on: fetched.
    let due = f.tip(t0 + HOUR).expect("tip");
    assert_eq!((due.commit.as_str(), due.fetched), (c2.as_str(), true));
    assert_eq!(f.fetches(), 2);
}

#[test]
fn follower_asked_fetches_at_once_and_many_asks_are_one_fetch() {
    let (remote, clone, c1) = remote_and_clone();
    let f = Follower::new(clone.source(), Follow::Branch("main".into()), HOUR);
    let t0 = Instant::now();
    assert_eq!(f.tip(t0).expect("tip").commit, c1);
    let c2 = push(&remote, 2);
    for _ in 0..100 {
        f.ask_fetch();
    }
    let tip = f.tip(t0 + Duration::from_secs(1)).expect("tip");
    assert_eq!((tip.commit.as_str(), tip.fetched), (c2.as_str(), true));
    assert_eq!(f.fetches(), 2, "a hundred asks, one fetch");
    let again = f.tip(t0 + Duration::from_secs(2)).expect("tip");
    assert!(!again.fetched);
    assert_eq!(f.fetches(), 2);
}

#[test]
fn follower_concurrent_fetch_now_all_see_the_push_with_few_fetches() {
    let (remote, clone, c1) = remote_and_clone();
    let f = Arc::new(Follower::new(
        clone.source(),
        Follow::Branch("main".into()),
        HOUR,
    ));
    let t0 = Instant::now();
    assert_eq!(f.tip(t0).expect("tip").commit, c1);
    let c2 = push(&remote, 2);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let f = f.clone();
            std::thread::spawn(move || f.fetch_now(Instant::now()).expect("fetch").commit)
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().expect("thread"), c2);
    }
    // One fetch answers every ask made before it started; the ones that came during it share
    // one more. Eight callers never make eight fetches.
    let fetches = f.fetches() - 1;
    assert!(
        (1..=3).contains(&fetches),
        "{fetches} fetches for 8 concurrent asks"
    );
}

#[test]
fn follower_failed_fetch_backs_off_and_serves_the_last_fetched_commit() {
    let (remote, clone, c1) = remote_and_clone();
    let f = Follower::new(clone.source(), Follow::Branch("main".into()), HOUR);
    let t0 = Instant::now();
    assert_eq!(f.tip(t0).expect("tip").commit, c1);
    drop(remote); // the remote's directory is gone
    f.ask_fetch();
    let err = f.tip(t0 + Duration::from_secs(1)).expect_err("unreachable");
    assert!(matches!(err, GitError::RemoteUnreachable { .. }), "{err:?}");
    // Within the first retry delay (2 s): no new attempt, the last fetched commit.
    let stale = f.tip(t0 + Duration::from_secs(2)).expect("stale tip");
    assert_eq!((stale.commit.as_str(), stale.fetched), (c1.as_str(), false));
    assert_eq!(f.fetches(), 2);
    // After it: tried again (and fails again), the next wait doubles.
    assert!(f.tip(t0 + Duration::from_secs(4)).is_err());
    assert!(
        f.tip(t0 + Duration::from_secs(7)).is_ok(),
        "4 s after the second failure: waits"
    );
    assert!(f.tip(t0 + Duration::from_secs(8)).is_err());
    assert_eq!(f.fetches(), 4);
    // An ask tries at once.
    f.ask_fetch();
    assert!(f.tip(t0 + Duration::from_secs(9)).is_err());
    assert_eq!(f.fetches(), 5);
}

#[test]
fn follower_tags_follow_the_remote_and_a_deleted_tag_is_left() {
    let (remote, clone, c1) = remote_and_clone();
    let c2 = push(&remote, 2);
    remote.tag("v1.0.0", &c1);
    remote.tag("v1.1.0", &c2);
    let pattern = TagPattern::new("v1.*").expect("pattern");
    let f = Follower::new(clone.source(), Follow::Tag(pattern), HOUR);
    let t0 = Instant::now();
    let tip = f.tip(t0).expect("tip");
    assert_eq!(
        (tip.commit.as_str(), tip.source.as_str()),
        (c2.as_str(), "refs/tags/v1.1.0")
    );

    // A newer tag is followed when asked (a tag push webhook).
    let c3 = push(&remote, 3);
    remote.tag_annotated("v1.2.0", &c3, "1.2.0");
    remote.tag("v2.0.0", &c3);
    assert_eq!(
        f.tip(t0 + Duration::from_secs(1)).expect("tip").commit,
        c2,
        "not asked yet"
    );
    f.ask_fetch();
    let tip = f.tip(t0 + Duration::from_secs(2)).expect("tip");
    assert_eq!(
        (tip.commit.as_str(), tip.source.as_str()),
        (c3.as_str(), "refs/tags/v1.2.0")
    );

    // Deleted on the remote: the one below it, and it stays so between fetches though the
    // clone still has the deleted tag.
    remote.delete_ref("refs/tags/v1.2.0");
    f.ask_fetch();
    assert_eq!(f.tip(t0 + Duration::from_secs(3)).expect("tip").commit, c2);
    assert_eq!(f.tip(t0 + Duration::from_secs(4)).expect("tip").commit, c2);
}

#[test]
fn follower_tags_none_matching_is_an_error_naming_the_pattern() {
    let (_remote, clone, _c1) = remote_and_clone();
    let f = Follower::new(
        clone.source(),
        Follow::Tag(TagPattern::new("v*").expect("pattern")),
        HOUR,
    );
    let err = f.tip(Instant::now()).expect_err("no tags");
    assert_eq!(
        err.to_string(),
        "failed to find a tag matching `v*` on remote `origin`"
    );
}

#[test]
fn follower_rev_never_fetches() {
    let (remote, clone, c1) = remote_and_clone();
    let f = Follower::new(clone.source(), Follow::Rev("HEAD".into()), HOUR);
    push(&remote, 2);
    f.ask_fetch();
    let tip = f.tip(Instant::now()).expect("tip");
    assert_eq!((tip.commit.as_str(), tip.fetched), (c1.as_str(), false));
    assert_eq!(f.fetches(), 0);
}
