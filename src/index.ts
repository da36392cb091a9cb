/**
 * migration-statecharts: an executable model of QEMU/VFIO live migration as XState v5 statecharts.
 * The root export re-exports the machines; tools live in their own subpaths.
 */
export * from '../machines/index.js';
