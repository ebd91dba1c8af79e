const smile = "é😀"; if (smile == undefinedThing) { console.log(smile); }
const unused = 1;
