"""Forget failed log-in attempts, so a locked-out account or address may log in again.

manage.py unlock_logins alice bob          # accounts
manage.py unlock_logins --address 10.0.0.7 # an address (logins and bad API tokens)
manage.py unlock_logins --status alice --address 10.0.0.7   # show, change nothing
"""

from django.core.management.base import BaseCommand, CommandError

from apps.accounts import throttle


class Command(BaseCommand):
    help = "Unlock accounts or client addresses locked out after failed log-ins or bad API tokens."

    def add_arguments(self, parser) -> None:
        parser.add_argument("usernames", nargs="*", help="accounts to unlock")
        parser.add_argument("--address", action="append", default=[], help="a client address to unlock (repeatable)")
        parser.add_argument("--status", action="store_true", help="only show failure counts")

    def handle(self, *args, usernames: list[str], address: list[str], status: bool, **options) -> None:
        if not usernames and not address:
            raise CommandError("Name at least one username or --address.")
        targets = [(throttle.ACCOUNT, name) for name in usernames]
        targets += [(kind, addr) for addr in address for kind in (throttle.ADDRESS, throttle.TOKEN_ADDRESS)]
        for kind, ident in targets:
            count = throttle.failures(kind, ident)
            wait = throttle.retry_after(kind, ident)
            state = f"locked for {wait} s more" if wait else "not locked"
            if status:
                self.stdout.write(f"{kind} {ident}: {count} failed attempts, {state}")
            elif throttle.clear(kind, ident):
                self.stdout.write(self.style.SUCCESS(f"{kind} {ident}: unlocked ({count} failed attempts forgotten)"))
            else:
                self.stdout.write(f"{kind} {ident}: had no failed attempts")
