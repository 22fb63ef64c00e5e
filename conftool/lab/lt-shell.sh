#!/bin/sh
# Login command of the lab routers' automation user (sshd ForceCommand), run inside the router's namespaces.
# Interactive logins land in vtysh for this router's FRR instance, as on a real router's CLI. One exec request,
# `lt-confirm arm N - | confirm | status`, drives the device-side commit-confirm watchdog: FRR's vtysh has no
# `commit confirmed`, so the device itself restores its previous running config unless the deploy confirms.
INST="$1"
VTYSH=/usr/bin/vtysh
DIR="${HOME:-/tmp}/.lt-confirm"
ARM_USAGE="usage: lt-confirm arm SECONDS - (the restore point on stdin)"

if [ "$2" = "__timer" ]; then
    # Detached from the SSH session (setsid): the timer must survive the management path being cut.
    sleep "$3"
    if [ -f "$DIR/pending" ]; then
        /usr/lib/frr/frr-reload.py --reload --stdout --pathspace "$INST" --bindir /usr/bin \
            --rundir "$DIR" "$DIR/snapshot.conf" > "$DIR/restore.log" 2>&1
        rm -f "$DIR/pending"
        echo "restored $(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$DIR/last"
        logger -t lt-confirm "commit not confirmed within $3 s: running config restored" 2>/dev/null || true
    fi
    exit 0
fi

case "$SSH_ORIGINAL_COMMAND" in
    "lt-confirm arm "*" -")
        # `lt-confirm arm N -`: the restore point comes on stdin — the running config the deploy has just read
        # over this same SSH connection and keeps as its backup, so the watchdog restores exactly that backup
        # and no second vtysh starts here (a vtysh start costs ~30 ms CPU, most of this request's).
        secs=${SSH_ORIGINAL_COMMAND#lt-confirm arm }
        secs=${secs% -}
        case "$secs" in ''|*[!0-9]*) echo "$ARM_USAGE"; exit 2 ;; esac
        mkdir -p "$DIR" && chmod 700 "$DIR"
        if [ -f "$DIR/timer.pid" ]; then kill "$(cat "$DIR/timer.pid")" 2>/dev/null; fi
        # vtysh prints a banner before the config; frr-reload.py wants only config lines.
        sed -e '/^Building configuration/d' -e '/^Current configuration/d' > "$DIR/snapshot.conf"
        grep -qx 'end' "$DIR/snapshot.conf" || { echo "snapshot failed: not a whole running config"; exit 1; }
        rm -f "$DIR/last"
        touch "$DIR/pending"
        setsid "$0" "$INST" __timer "$secs" < /dev/null > /dev/null 2>&1 &
        echo $! > "$DIR/timer.pid"
        echo "armed $secs"
        ;;
    "lt-confirm arm"*)
        echo "$ARM_USAGE"; exit 2
        ;;
    "lt-confirm confirm")
        # Only a change still pending can be confirmed: once the timer has fired, the device runs its restore
        # point, not the change, and the answer says so (one request: no gap between checking and confirming).
        if [ ! -f "$DIR/pending" ]; then
            if [ -f "$DIR/last" ]; then echo "not pending: $(cat "$DIR/last")"; else echo "not pending: idle"; fi
            exit 1
        fi
        rm -f "$DIR/pending"
        if [ -f "$DIR/timer.pid" ]; then kill "$(cat "$DIR/timer.pid")" 2>/dev/null; rm -f "$DIR/timer.pid"; fi
        echo "confirmed"
        ;;
    "lt-confirm status")
        if [ -f "$DIR/pending" ]; then echo pending; elif [ -f "$DIR/last" ]; then cat "$DIR/last"; else echo idle; fi
        ;;
    "")
        exec "$VTYSH" -N "$INST"
        ;;
    *)
        exec "$VTYSH" -N "$INST" -c "$SSH_ORIGINAL_COMMAND"
        ;;
esac
