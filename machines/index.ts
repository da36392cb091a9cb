/** The statecharts and their data. Pure: nothing here does I/O or imports from src/. */
export * from './vfioArcs.js';
export * from './vfioPath.js';
export * from './vfioTable.js';
export * from './vfioDevice.js';
export * from './migrationMessages.js';
export * from './qemuVfio.js';
export * from './qemuSource.js';
export * from './qemuDestination.js';
