/** The modules the guest loads, in load order (no modules.dep: busybox insmod takes them as given). */
export const MODULES = [
  'virtio_ring', 'virtio', 'virtio_pci_legacy_dev', 'virtio_pci_modern_dev', 'virtio_pci',
  'failover', 'net_failover', 'virtio_net', 'netfs', 'fscache', '9pnet', '9pnet_fd', '9pnet_virtio', '9p',
];
export const MODULES_LIST = MODULES.join(' ');
