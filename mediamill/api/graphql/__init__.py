"""The GraphQL media library at ``/graphql``, shaped like Shopify's Files API."""
