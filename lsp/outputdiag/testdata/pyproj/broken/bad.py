def f():
    smile = "é😀"; return (1,
