terraform {
  required_version = ">= 1.10" # S3 state locking without DynamoDB (use_lockfile)
  # Filled per environment: terraform init -backend-config=<env>.s3.tfbackend
  backend "s3" {}
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.90, < 7.0"
    }
  }
}
