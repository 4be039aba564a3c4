//! A plain WASI command: a valid component that does not target `anthill:module`.
//! The admin API must refuse it with 422 and say what is missing.

fn main() {
    println!("hello from a command component");
}
