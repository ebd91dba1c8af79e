mod util;

fn main() {
    let smile = "é😀"; let count: i32 = smile;
    let unused = 1;
    util::twice(count, 2);
}
