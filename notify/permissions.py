"""Who may do what with notifications."""
from backend.kit.auth import Principal
from backend.kit.errors import AppError

__all__ = ["DELIVERY_ADMIN_ROLES", "require_delivery_admin"]

# deliveries are every hall's, naming citizens by id only: seeing and retrying them is the work of the
# centre's operators, an admin grant that is not narrowed to one hall or department
DELIVERY_ADMIN_ROLES = ("admin",)


def require_delivery_admin(principal: Principal) -> None:
    if not any(g.role in DELIVERY_ADMIN_ROLES and g.hall is None and g.department is None
               for g in principal.grants):
        raise AppError("out_of_scope", 403)
