export function greet(name: string, times: number): string {
  return name.repeat(times);
}
