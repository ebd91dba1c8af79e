fn main() {
    let smile = "é😀"; let unused = smile.len();
}
