/** What the namespace code needs from the volume (implemented by Volume). */
import type { VolumeContext } from './context';
import type { Inode } from './inode';
import type { Transaction } from './transaction';
import type { Dinode } from './format/dinode';
import type { Mutex } from './lock';

export interface OrphanHandling {
  /** The last link of `inode` went in `tx` (di is its new image): orphan it if open, else free it in tx. */
  lastLinkGone(tx: Transaction, inode: Inode, di: Dinode): Promise<void>;
  /** After the commit: if the inode is unlinked and no longer open, free it. */
  reapIfUnused(inode: Inode): Promise<void>;
}

export interface NameiHost extends VolumeContext {
  readonly rootIno: number;
  readonly metaLock: Mutex;
  readonly orphans: OrphanHandling;
  readonly systemFiles: ReadonlyMap<string, number>;
  iget(ino: number): Promise<Inode>;
  /** Registers the in-memory inode for a dinode a transaction just created. */
  adopt(di: Dinode): Inode;
  begin(label: string): Transaction;
  /** Drops the in-memory inode of a freed inode. */
  forget(ino: number): void;
}
