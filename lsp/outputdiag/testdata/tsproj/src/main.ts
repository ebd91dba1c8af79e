import { greet } from "./greet";

const smile = "é😀"; const count: number = smile;
greet("x");
