// tickwire.js: being written (issue 10).
export class Tickwire {}
