"""Domain errors of the users service."""

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


class InvalidCpfError(UnprocessableError):
    slug = "invalid-cpf"
    title = "Invalid CPF"


class CpfTakenError(ConflictError):
    slug = "cpf-taken"
    title = "This CPF belongs to another account"


class PhoneRequiredError(UnprocessableError):
    slug = "phone-required"
    title = "SMS notifications need a phone number"


class TooManyAddressesError(ConflictError):
    slug = "too-many-addresses"
    title = "Address book is full"


class UnknownProductError(UnprocessableError):
    slug = "unknown-product"
    title = "Unknown or unavailable product"


class WishlistFullError(ConflictError):
    slug = "wishlist-full"
    title = "Wishlist is full"
