from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin

from apps.accounts import throttle
from apps.accounts.forms import AdminLoginForm
from apps.accounts.models import ApiToken, Cohort, User

# The admin's own login page is throttled like the site's.
admin.site.login_form = AdminLoginForm


@admin.register(User)
class AtriumUserAdmin(UserAdmin):
    fieldsets = (*UserAdmin.fieldsets, ("Atrium", {"fields": ("role",)}))
    list_display = ("username", "email", "role", "is_active", "last_login")
    list_filter = ("role", "is_active")
    actions = ["unlock_login"]

    @admin.action(description="Unlock log-in (forget failed attempts)")
    def unlock_login(self, request, queryset) -> None:
        unlocked = [user.username for user in queryset if throttle.clear(throttle.ACCOUNT, user.username)]
        self.message_user(
            request,
            f"Unlocked: {', '.join(unlocked)}." if unlocked else "None of them had failed attempts.",
            messages.SUCCESS,
        )


@admin.register(Cohort)
class CohortAdmin(admin.ModelAdmin):
    list_display = ("name", "teacher", "join_code", "created_at")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "last_used_at")
    readonly_fields = ("key_hash", "prefix")
