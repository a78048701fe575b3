fn main() {
    // The migrations are embedded by sqlx::migrate!, which does not see a
    // new file in their folders by itself.
    println!("cargo:rerun-if-changed=migrations");
}
