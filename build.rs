//! Generates the parser from grammar/nn.lalrpop.
fn main() {
    lalrpop::Configuration::new()
        .set_in_dir("grammar")
        .process()
        .expect("lalrpop failed on grammar/");
    println!("cargo:rerun-if-changed=grammar");
}
