/**
 * virtio-net migration, the vocabulary shared by ./virtioNetSource.ts and ./virtioNetDestination.ts:
 * the designs, the tracked device state (abstracted into field groups), the sections a virtio-net
 * device puts on the main stream, and the machine-type default of the `early-mig` property.
 *
 * None of this is in upstream QEMU (master ece408818d has no early_setup VMSD in hw/net/virtio-net.c;
 * the only in-tree early_setup user is hw/virtio/virtio-mem.c). The designs are two RFCs under review on
 * qemu-devel (2025): a SaveVMHandlers-based "iterative" series with a `virtio-iterative` migration
 * capability, and its successor, an early_setup VMSD with an `early-mig` device property. Names that
 * only exist in those RFCs are marked "RFC" below; where the RFCs leave something open, the comment
 * says which reading the model takes.
 *
 * The tracked device state is abstracted: the fields the early-mig RFC compares at stop-and-copy are
 * grouped in two groups, each one bit. A guest change flips its group's bit, so two changes of the
 * same group restore the value the snapshot holds — the case that tells comparing values apart from
 * dirty tracking. Comparing the bits is exactly comparing the abstract values; what the abstraction
 * loses is how many distinct values a group can take, which no design here depends on.
 */

/** - 'early-mig': the early_setup VMSD RFC: provisional state at setup, delta detection at stop-and-copy.
 *  - 'iterative': the earlier SaveVMHandlers RFC: state sent in save_setup, re-sent at stop-and-copy if it
 *    may have changed since, enabled by the migration capability `virtio-iterative` (validated on both sides).
 *  - 'legacy': QEMU today: the whole vmstate_virtio_net section in the non-iterable phase, nothing earlier. */
export type VirtioNetDesign = 'early-mig' | 'iterative' | 'legacy';

export const VIRTIO_NET_DESIGNS: readonly VirtioNetDesign[] = ['early-mig', 'iterative', 'legacy'];

/** The field groups, each with what it stands for and whether an early-started vhost backend is set up from it. */
export const FIELD_GROUPS = [
  {
    name: 'control',
    abstracts: 'VirtIODevice config buffer, VirtIONet status (link), MAC address, MAC table, Rx filter flags, VLAN filter table',
    vhost: false,
  },
  {
    name: 'datapath',
    abstracts: 'VirtIODevice status, negotiated guest offloads, multiqueue (queue pairs), RSS, pending Tx work',
    vhost: true,
  },
] as const;

export type FieldGroup = (typeof FIELD_GROUPS)[number]['name'];
export const GROUP_NAMES: readonly FieldGroup[] = FIELD_GROUPS.map((g) => g.name);
/** The groups an early-started vhost-net instance is configured from. */
export const VHOST_GROUPS: readonly FieldGroup[] = FIELD_GROUPS.filter((g) => g.vhost).map((g) => g.name);

/** The abstract device state: one bit per field group. */
export type FieldValues = Readonly<Record<FieldGroup, 0 | 1>>;

export const INITIAL_VALUES: FieldValues = { control: 0, datapath: 0 };

/** Equal on the given groups (default: all). */
export function sameValues(a: FieldValues | null, b: FieldValues | null, groups: readonly FieldGroup[] = GROUP_NAMES): boolean {
  if (a === null || b === null) return a === b;
  return groups.every((g) => a[g] === b[g]);
}

/**
 * What a virtio-net device writes on the main stream (source → destination), besides the QEMU messages
 * it passes on. Payloads carry the abstract state.
 */
export type VirtioNetSection =
  /** early-mig (RFC): the early_setup VMSD, saved by qemu_savevm_state_setup while the guest runs. */
  | { type: 'VIRTIO_NET_EARLY'; state: FieldValues }
  /** early-mig (RFC): the "virtio-delta" VMSD at stop-and-copy when no tracked field changed: virtqueue state only. */
  | { type: 'VIRTIO_DELTA_RESYNC' }
  /** The existing vmstate_virtio_net section (hw/net/virtio-net.c): the full reload. */
  | { type: 'VIRTIO_NET_STATE'; state: FieldValues }
  /** iterative (RFC): virtio_net_save_setup's initial state (flag VNET_MIG_F_INIT_STATE); also a re-send. */
  | { type: 'VNET_MIG_F_INIT_STATE'; state: FieldValues }
  /** iterative (RFC): nothing changed since it was sent (flag VNET_MIG_F_NO_DATA) at stop-and-copy. */
  | { type: 'VNET_MIG_F_NO_DATA' }
  /**
   * iterative (RFC): the configuration section's list of validated capabilities (migration/savevm.c,
   * configuration_validate_capabilities), reduced to the one the RFC adds.
   */
  | { type: 'QEMU_VM_CONFIGURATION'; virtioIterative: boolean };

export const VIRTIO_NET_SECTIONS: readonly VirtioNetSection['type'][] = [
  'VIRTIO_NET_EARLY',
  'VIRTIO_DELTA_RESYNC',
  'VIRTIO_NET_STATE',
  'VNET_MIG_F_INIT_STATE',
  'VNET_MIG_F_NO_DATA',
  'QEMU_VM_CONFIGURATION',
];

/**
 * The machine type from which `early-mig` defaults to on. The early-mig RFC names 10.2 (older machine
 * types get `early-mig=off` through a hw_compat entry in hw/core/machine.c); an upstream version would
 * take the next release's number instead. Iterative has no machine-type default: it is a capability.
 */
export const EARLY_MIG_DEFAULT_SINCE = '10.2';

/** `pc-q35-10.1`, `10.1` → [10, 1]. */
function machineVersion(machine: string): [number, number] {
  const m = /(\d+)\.(\d+)$/.exec(machine.trim());
  if (!m) throw new Error(`machine type ${JSON.stringify(machine)}: expected a version such as 10.2 or pc-q35-10.2`);
  return [Number(m[1]), Number(m[2])];
}

/** The default of `early-mig` for a machine type (the compat property). */
export function earlyMigDefault(machine: string): boolean {
  const [a, b] = machineVersion(machine);
  const [x, y] = machineVersion(EARLY_MIG_DEFAULT_SINCE);
  return a > x || (a === x && b >= y);
}

/** How one host is configured: its machine type and, if given, an explicit property/capability value. */
export interface VirtioNetSide {
  /** e.g. '10.2' or 'pc-q35-10.1' (default: EARLY_MIG_DEFAULT_SINCE). */
  readonly machine?: string;
  /** `-device virtio-net-pci,early-mig=on|off`, or the `virtio-iterative` capability; unset: the default. */
  readonly enabled?: boolean;
}

/** Is the design's feature on for this host? legacy: never; iterative: the capability (default on); early-mig: the property. */
export function resolveEnabled(design: VirtioNetDesign, side: VirtioNetSide = {}): boolean {
  if (design === 'legacy') return false;
  if (side.enabled !== undefined) return side.enabled;
  return design === 'iterative' ? true : earlyMigDefault(side.machine ?? EARLY_MIG_DEFAULT_SINCE);
}
