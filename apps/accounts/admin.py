from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from apps.accounts.models import ApiToken, Cohort, User


@admin.register(User)
class AtriumUserAdmin(UserAdmin):
    fieldsets = (*UserAdmin.fieldsets, ("Atrium", {"fields": ("role",)}))
    list_display = ("username", "email", "role", "is_active", "last_login")
    list_filter = ("role", "is_active")


@admin.register(Cohort)
class CohortAdmin(admin.ModelAdmin):
    list_display = ("name", "teacher", "join_code", "created_at")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "last_used_at")
    readonly_fields = ("key_hash", "prefix")
