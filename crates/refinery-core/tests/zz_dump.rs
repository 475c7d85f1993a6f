use refinery_core::{LoadOptions, load_manifest};
#[test]
fn dump() {
    let mut names: Vec<_> = std::fs::read_dir("tests/fixtures/manifest").unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    let env = |n: &str| if n == "HOME" { Some("/root".to_string()) } else { None };
    for n in names {
        let src = std::fs::read_to_string(format!("tests/fixtures/manifest/{n}")).unwrap();
        let r = load_manifest(&n, &src, &LoadOptions { env: &env, base_dir: Some("/repo".into()) });
        match r {
            Ok(l) => { println!("OK {n} warnings={:?}", l.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>()); }
            Err(e) => { println!("ERR {n}: {e}"); for i in e.issues() { println!("   {i}  [hint: {:?}]", i.hint); } }
        }
    }
}
