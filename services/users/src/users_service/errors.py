"""Domain errors of the users service.

Statuses follow one rule across the platform: 422 only for a request its schema already
refuses, 404 when something named (in the path or the body) does not exist, 409 when a
well-formed request conflicts with what is stored.
"""

from __future__ import annotations

from shopkit.problems import ConflictError, DomainError, NotFoundError, UnprocessableError


class ProfileNotFoundError(NotFoundError):
    slug = "profile-not-found"
    title = "Profile not found"


class ProfileDeletedError(DomainError):
    status = 410
    slug = "profile-deleted"
    title = "This account was deleted"


class AddressNotFoundError(NotFoundError):
    slug = "address-not-found"
    title = "Address not found"


class InvalidCepError(UnprocessableError):
    slug = "invalid-cep"
    title = "Invalid CEP"


class CepStateMismatchError(UnprocessableError):
    slug = "cep-state-mismatch"
    title = "The CEP belongs to another state"


class AddressStateConflictError(ConflictError):
    """A change would leave an address whose CEP lies in another state than its own."""

    slug = "cep-state-mismatch"
    title = "The CEP belongs to another state"


class InvalidCpfError(UnprocessableError):
    slug = "invalid-cpf"
    title = "Invalid CPF"


class CpfTakenError(ConflictError):
    slug = "cpf-taken"
    title = "This CPF belongs to another account"


class PhoneRequiredError(ConflictError):
    slug = "phone-required"
    title = "SMS notifications need a phone number"


class TooManyAddressesError(ConflictError):
    slug = "too-many-addresses"
    title = "Address book is full"


class UnknownProductError(NotFoundError):
    slug = "unknown-product"
    title = "Unknown or unavailable product"


class WishlistFullError(ConflictError):
    slug = "wishlist-full"
    title = "Wishlist is full"
