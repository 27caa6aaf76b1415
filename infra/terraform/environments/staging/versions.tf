terraform {
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
    tls = {
      source  = "hashicorp/tls"
      version = "~> 4.0"
    }
    kafka = {
      source  = "Mongey/kafka"
      version = "~> 0.8"
    }
    postgresql = {
      source  = "cyrilgdn/postgresql"
      version = "~> 1.25"
    }
  }

  # State holds generated credentials: an encrypted, versioned bucket with native locking.
  # Bucket and key are given at init: terraform init -backend-config=backend.hcl
  backend "s3" {
    key          = "shop/staging/terraform.tfstate"
    encrypt      = true
    use_lockfile = true
  }
}
