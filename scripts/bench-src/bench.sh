#!/bin/sh
# The Linux guest's init script, run by /init (init.c) with busybox's shell: runs the benchmark
# named on the kernel command line after `--`, reports its exit status, and powers off.
# Options before the benchmark:
#   --vulnerabilities  first print the guest kernel's mitigation state (BENCH-VULNERABILITY lines)
#   --cpu-stat         afterwards print the first line of /proc/stat (BENCH-CPU-STAT: user nice
#                      system idle ... in USER_HZ ticks), to show how much of the boot was idle
#   --sysfs PATH       first print the sysfs file /sys/PATH (BENCH-SYSFS PATH: contents), e.g.
#                      the clock source or the transparent-huge-page setting
#   --ext4-disk DIR    load the virtio-blk driver from /modules (in name order: the initramfs
#                      numbers them by dependency) and mount the disk /dev/vda, ext4, at DIR
#   --net ADDRESS/PREFIX  load the virtio-net driver from /modules and give eth0 ADDRESS
cpu_stat=no
while :; do
    case "$1" in
    --vulnerabilities)
        /bin/busybox mount -t sysfs sysfs /sys
        for f in /sys/devices/system/cpu/vulnerabilities/*; do
            echo "BENCH-VULNERABILITY ${f##*/}: $(/bin/busybox cat "$f")"
        done
        shift ;;
    --cpu-stat) cpu_stat=yes; shift ;;
    --sysfs)
        [ -d /sys/kernel ] || /bin/busybox mount -t sysfs sysfs /sys
        echo "BENCH-SYSFS $2: $(/bin/busybox cat "/sys/$2")"
        shift 2 ;;
    --ext4-disk)
        /bin/busybox mount -t devtmpfs devtmpfs /dev
        for module in /modules/*.ko; do
            /bin/busybox insmod "$module" || echo "BENCH-ERROR insmod $module"
        done
        tries=0
        while [ ! -b /dev/vda ] && [ $tries -lt 100 ]; do
            /bin/busybox sleep 0.1
            tries=$((tries + 1))
        done
        /bin/busybox mkdir -p "$2"
        /bin/busybox mount -t ext4 /dev/vda "$2" || echo "BENCH-ERROR mount /dev/vda"
        shift 2 ;;
    --net)
        /bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
        [ -d /sys/kernel ] || /bin/busybox mount -t sysfs sysfs /sys
        for module in /modules/*.ko; do
            /bin/busybox insmod "$module" || echo "BENCH-ERROR insmod $module"
        done
        tries=0
        while [ ! -e /sys/class/net/eth0 ] && [ $tries -lt 100 ]; do
            /bin/busybox sleep 0.1
            tries=$((tries + 1))
        done
        /bin/busybox ip link set lo up
        /bin/busybox ip addr add "$2" dev eth0 || echo "BENCH-ERROR ip addr add $2"
        /bin/busybox ip link set eth0 up
        shift 2 ;;
    *) break ;;
    esac
done
"$@"
status=$?
if [ $cpu_stat = yes ]; then
    /bin/busybox mount -t proc proc /proc
    echo "BENCH-CPU-STAT $(/bin/busybox head -n 1 /proc/stat)"
fi
echo "BENCH-STATUS $status"
/bin/busybox poweroff -f
