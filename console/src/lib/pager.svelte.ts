// Cursor paging for a list screen: the cursor of the page shown and the ones before it, so
// Previous goes back without the worker having to page backwards.
export class Pager {
  cursor = $state<string | undefined>(undefined);
  private back = $state<(string | undefined)[]>([]);

  get hasPrevious(): boolean {
    return this.back.length > 0;
  }

  next(cursor: string) {
    this.back.push(this.cursor);
    this.cursor = cursor;
  }

  previous() {
    this.cursor = this.back.pop();
  }

  /** Back to the first page (the filters changed). */
  reset() {
    this.back = [];
    this.cursor = undefined;
  }
}
