#[test]
fn scratch_errors2() {
    let cases = [
        "flow f {\n  when x\n  wait for a up 2d\n}\n",
        "flow f {\n  when x\n  reentry sometimes\n}\n",
        "flow f {\n  when x\n  holdout 10\n}\n",
        "flow f {\n  when x\n  split { 50 { stop } }\n}\n",
        "flow f {\n  when every 1d\n}\n",
        "policy {\n  limit email per 1d\n}\n",
        "policy {\n  quiet hours 9-5\n}\n",
        "flw a {\n}\n",
        "segment a == b\n",
        "flow f {\n  when x\n  send \"welcome\"\n}\n",
        "flow f {\n  when x\n  if x { stop } else if { stop }\n}\n",
        "flow f {\n  when x\n  wait for a where up to 2d\n}\n",
        "\u{feff}segment a = b\n",
        "segment a = b)\n",
        "flow f {\n  when x\n  wait for a up to 2d { stop } else\n}\n",
        "flow f {\n  when x\n  wait 2 hrs\n}\n",
        "flow f {\n  when x\n  wait 1.5h\n}\n",
        "flow f {\n  when x\n  wait -1d\n}\n",
        "message m: email {\n  subject: \"a\"\n  body: \"b\"\n  subject: \"c\" body: \"d\"\n}\n",
        "segment a = contact.\n",
        "segment a = count(order_placed.total)\n",
        "segment a = sum(order_placed)\n",
        "flow f {\n  when x\n  goal y\n}\n",
        "flow f {\n  when x\n  exit when y\n}\n",
        "flow f {\n  when x\n  stop\n}\n}\n",
        "flow f {\n  when x\n  send a b c\n}\n",
    ];
    for case in cases {
        println!("----\n{case}");
        match flowc::syntax::parse(case) {
            Ok(_) => println!("  OK (parsed)"),
            Err(e) => {
                let (l, c) = flowc::diagnostic::line_column(case, e.span.start);
                println!("  {l}:{c} [{:?}] {}\n    label: {}\n    help: {:?}", &case[e.span.start..e.span.end], e.message, e.label, e.help);
            }
        }
    }
}
